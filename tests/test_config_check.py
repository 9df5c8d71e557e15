"""Config checks made when Snakemake reads the config, before any job: unknown keys at every level, labels,
model construction and input sizes, external prediction folders (docs/reliability.md)."""

import copy
import hashlib
import re
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from conftest import ROOT, TINY, copy_workflow, snakemake
from lesionbench.config_check import ConfigError, check_config_keys, check_run_config
from lesionbench.models import SMP_ARCHITECTURES, SMP_ENCODERS
from lesionbench.training.config import DEFAULTS

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def load(path):
    return yaml.safe_load(Path(path).read_text())


def merged(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


DEFAULT = load(ROOT / "config" / "config.yaml")
CONFIGS = {"config.yaml": DEFAULT, "full.yaml": load(ROOT / "config" / "full.yaml"),
           "tiny.yaml": merged(DEFAULT, load(TINY))}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_configs_pass_every_check(name):
    config = copy.deepcopy(CONFIGS[name])
    check_config_keys(config, SCHEMA, [name])
    validate(config, str(SCHEMA))
    check_run_config(config, [name])


# (where to put the misspelled key, the key) for every level of the schema
MISSPELLED = [
    ((), "reslts"),
    (("datasets", "synthetic_ct"), "preprocesing"),
    (("datasets", "synthetic_ct", "split"), "salts"),
    (("datasets", "synthetic_ct", "split", "max_cases"), "tests"),
    (("datasets", "synthetic_ct", "synthetic"), "n_case"),
    (("datasets", "synthetic_ct", "preprocessing"), "normalisation"),
    (("datasets", "synthetic_ct", "evaluation"), "contour_tolerance"),
    (("datasets", "synthetic_ct", "training"), "epoch"),
    (("datasets", "synthetic_ct", "labels"), "lesions"),
    (("datasets", "synthetic_ct", "download"), "retry"),
    (("models", "unet"), "encodr"),
    (("training",), "batchsize"),
    (("training", "augmentation"), "flips"),
    (("training", "loss"), "dice"),
    (("postprocessing",), "treshold"),
    (("evaluation",), "distance_penalty"),
    (("statistics",), "bootstrap_resample"),
]


@pytest.mark.parametrize("parent, key", MISSPELLED, ids=[".".join(p + (k,)) for p, k in MISSPELLED])
def test_unknown_keys_are_refused_at_every_level(parent, key):
    config = copy.deepcopy(DEFAULT)
    node = config
    for part in parent:
        node = node.setdefault(part, {})
    node[key] = 1
    with pytest.raises(ConfigError) as info:
        check_config_keys(config, SCHEMA, ["config/config.yaml", "mine.yaml"])
    msg = str(info.value)
    full = ".".join(parent + (key,))
    assert f"unknown key `{full}`" in msg
    assert "config files read: config/config.yaml, mine.yaml" in msg and "config/README.md" in msg
    with pytest.raises(Exception, match=f"'{key}' was unexpected"):  # Snakemake's validation agrees
        validate(config, str(SCHEMA))


def test_misspelling_suggests_the_key():
    config = dict(copy.deepcopy(DEFAULT), reslts="elsewhere")
    with pytest.raises(ConfigError, match=re.escape("unknown key `reslts` (did you mean `results`?)")):
        check_config_keys(config, SCHEMA)


def test_every_key_the_code_reads_is_declared():
    schema = load(SCHEMA)
    code = "\n".join(p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk")),
                                              *sorted((ROOT / "scripts").glob("*.py"))])
    top = set(re.findall(r'config\["(\w+)"\]', code)) | set(re.findall(r'config\.get\("(\w+)"', code))
    assert top and top <= set(schema["properties"]), top - set(schema["properties"])
    assert set(DEFAULTS) == set(schema["definitions"]["training"]["properties"])
    for block in ("augmentation", "loss"):
        assert set(DEFAULTS[block]) == set(schema["definitions"]["training"]["properties"][block]["properties"])
    sources = "\n".join(p.read_text() for p in (ROOT / "src" / "lesionbench" / "data").rglob("*.py"))
    dataset_keys = set(re.findall(r'ds_cfg(?:\.get\(|\[)"(\w+)"', sources))
    assert dataset_keys and dataset_keys <= set(schema["definitions"]["dataset"]["properties"])
    download_keys = set(re.findall(r'\bdl(?:\.get\(|\[)"(\w+)"', sources))
    assert download_keys and download_keys <= set(
        schema["definitions"]["dataset"]["properties"]["download"]["properties"])


def test_static_encoder_and_architecture_lists_match_smp():
    import segmentation_models_pytorch as smp

    assert set(smp.encoders.encoders) == SMP_ENCODERS
    assert set(smp.MODEL_ARCHITECTURES_MAPPING) == SMP_ARCHITECTURES


def run_problems(config, tmp_path=Path(".")):
    with pytest.raises(ConfigError) as info:
        check_run_config(config, ["config/config.yaml", "mine.yaml"], workdir=tmp_path)
    msg = str(info.value)
    assert msg.startswith("invalid configuration (config files read: config/config.yaml, mine.yaml)")
    return msg


def test_same_label_in_lesion_and_ignore():
    config = copy.deepcopy(DEFAULT)
    config["datasets"]["synthetic_ct"]["labels"] = {"lesion": [1, 2], "ignore": [2, 3]}
    msg = run_problems(config)
    assert "datasets.synthetic_ct.labels: [2] in both lesion [1, 2] and ignore [2, 3]" in msg
    assert "remove it from one list" in msg


def test_unknown_encoder_or_architecture():
    config = copy.deepcopy(DEFAULT)
    config["models"]["resunet"]["encoder"] = "resnet19"
    config["models"]["unet"]["arch"] = "UNet++"
    msg = run_problems(config)
    assert "models.resunet: model 'resunet': unknown encoder 'resnet19' (did you mean 'resnet18'" in msg
    assert "models.unet: model 'unet': arch 'UNet++' is not a segmentation-models-pytorch architecture" in msg


def test_input_size_the_model_cannot_take():
    config = copy.deepcopy(DEFAULT)
    config["datasets"]["synthetic_mri"]["training"] = {"input_size": 100}
    msg = run_problems(config)
    # depth-4 encoders need multiples of 16, the depth-5 Mix Transformer multiples of 32
    assert "data set 'synthetic_mri': model 'unet': input_size 100 must be divisible by 16" in msg
    assert "data set 'synthetic_mri': model 'hybrid_transformer': input_size 100 must be divisible by 32" in msg
    assert "set training.input_size (or datasets.synthetic_mri.training.input_size) to a multiple of it" in msg
    assert "synthetic_ct" not in msg


def test_external_model_folder_that_does_not_exist(tmp_path):
    config = dict(copy.deepcopy(DEFAULT), external_models={"nnunet": "preds/{dataset}"})
    for name in ("synthetic_fundus", "synthetic_mri"):
        (tmp_path / "preds" / name).mkdir(parents=True)
    msg = run_problems(config, tmp_path)
    assert f"external_models.nnunet: folder {tmp_path / 'preds' / 'synthetic_ct'} (data set 'synthetic_ct') " \
           f"does not exist" in msg
    assert "synthetic_mri" not in msg and "or remove the entry" in msg
    (tmp_path / "preds" / "synthetic_ct").mkdir()
    check_run_config(config, workdir=tmp_path)


def tree_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("override, message", [
    ("reslts: elsewhere\n", "unknown key `reslts` (did you mean `results`?)"),
    ("external_models: {nnunet: 'missing/{dataset}'}\n", "external_models.nnunet: folder missing/synthetic_ct"),
    ("models: {resunet: {encoder: resnet19}}\n", "unknown encoder 'resnet19'"),
])
def test_snakemake_stops_before_any_job_and_keeps_results(tmp_path_factory, override, message):
    workdir = copy_workflow(tmp_path_factory.mktemp("cfg") / "lesionbench")
    earlier = workdir / "results" / "overall_metrics.csv"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("dataset,model\nsynthetic_ct,resunet\n")
    bad = workdir / "mine.yaml"
    bad.write_text(override)
    before = tree_digest(workdir / "results")
    proc = snakemake(workdir, "--cores", "1", configfiles=[bad])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in out, out[-3000:]
    assert f"config files read: {workdir / 'config' / 'config.yaml'}, {TINY}, {bad}" in out
    assert tree_digest(workdir / "results") == before  # the earlier results are untouched
    assert "rule acquire" not in out and "localrule" not in out  # no job started
