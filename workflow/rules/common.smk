# Shared helpers for every stage file: result paths, the code each job depends on, target collection.
from pathlib import Path

R = config["results"]
FIGURES = config["figures"]
DATASETS = sorted(config["datasets"])
TRAINED_MODELS = sorted(config["models"])
# Predictions made by other tools, evaluated and compared exactly like a trained model: name -> folder
# (a `{dataset}` placeholder is replaced by the data set name) holding one prediction file per test case
# (docs/contracts.md).
EXTERNAL_MODELS = dict(config.get("external_models") or {})
MODELS = sorted(TRAINED_MODELS + list(EXTERNAL_MODELS))
# Evaluation-only data sets (`split: {all_test: true}`, e.g. the `references` source that `lesionbench compare`
# configures): every case is a test case, so nothing can be trained on them; only external models are scored.
EVALUATION_ONLY = sorted(d for d in DATASETS if config["datasets"][d]["split"].get("all_test"))
# The evaluation-only run of one data set (`lesionbench compare`) also writes summary.json and
# metrics/{model}/ tables (workflow/rules/compare.smk).
COMPARE_MODE = bool(EVALUATION_ONLY) and EVALUATION_ONLY == DATASETS and len(DATASETS) == 1
if not MODELS:
    raise ValueError("config: no model to evaluate; configure `models` (trained here) or `external_models`")
if EVALUATION_ONLY and TRAINED_MODELS:
    raise ValueError(f"config: data sets {EVALUATION_ONLY} are evaluation-only (split.all_test: every case is a "
                     f"test case) but models {TRAINED_MODELS} would be trained on them; set `models: {{}}` and "
                     f"list predictions under `external_models`, or give these data sets a train/val split")
if len(DATASETS) > 1:
    _shared = sorted(m for m, folder in EXTERNAL_MODELS.items() if "{dataset}" not in folder)
    if _shared:
        raise ValueError(f"config: external_models {_shared} have no {{dataset}} placeholder in their folder, "
                         f"but {len(DATASETS)} data sets are configured (each needs its own predictions)")
# How prediction files are read (lesionbench.io.predictions): probability maps only when asked for.
PREDICTION_READING = {
    "probability_maps": config["evaluation"]["probability_maps"],
    "missing_predictions": config["evaluation"]["missing_predictions"],
}
PREDICTION_THRESHOLD = config["postprocessing"]["threshold"] if PREDICTION_READING["probability_maps"] else None
SEEDS = [int(s) for s in config["seeds"]]
SCRIPTS = str(Path(workflow.basedir) / "scripts")
SRC = Path(workflow.basedir) / "src" / "lesionbench"

# Each stage file appends the final outputs of the run here.
TARGETS = []


def code(*parts):
    """Library files a job depends on. Editing them re-runs that job (mtime trigger) and only
    what follows it. Directories expand to their .py files."""
    files = []
    for part in parts:
        path = SRC / part
        files += sorted(str(p) for p in path.rglob("*.py")) if path.is_dir() else [str(path)]
    return files


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def select_keys(*keys):
    """Params function: only the named keys of the data set config block, so a job re-runs when
    what it uses changes and not when another stage's setting does."""

    def pick(wildcards):
        ds = config["datasets"][wildcards.dataset]
        return {k: ds[k] for k in keys if k in ds}

    return pick


# Code each source's acquisition and reading depends on (library files, for the mtime trigger).
SOURCE_CODE = {
    "synthetic": ["data/sources/synthetic.py", "data/sources/folder.py", "data/synthetic.py"],
    "folder": ["data/sources/folder.py"],
    "wmh": ["data/sources/wmh.py", "data/sources/lits.py", "data/download.py"],
    "lits": ["data/sources/lits.py", "data/download.py"],
    "idrid": ["data/sources/idrid.py", "data/download.py"],
    "references": ["data/sources/references.py", "data/sources/folder.py"],
}


def source_code(wildcards):
    source = config["datasets"][wildcards.dataset]["source"]
    return code("data/sources/__init__.py", *SOURCE_CODE[source])


def predictions_dir(dataset, model, seed):
    """Where a model's predictions are: the predict rule's folder, or an external model's own folder
    (external predictions do not depend on the training seed)."""
    if model in EXTERNAL_MODELS:
        return EXTERNAL_MODELS[model].format(dataset=dataset)
    return f"{R}/predictions/{dataset}/{model}/seed{seed}"
