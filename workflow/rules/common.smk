# Shared helpers for every stage file: result paths, the code each job depends on, target collection.
import importlib.util
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
# An evaluation-only run (`lesionbench compare`: every data set evaluation-only, one or several) also writes
# summary/{dataset}.json (workflow/rules/compare.smk) and has no controls and no training.
COMPARE_MODE = bool(EVALUATION_ONLY) and EVALUATION_ONLY == DATASETS
# How prediction files are read (lesionbench.io.predictions): probability maps only when asked for.
PREDICTION_READING = {
    "probability_maps": config["evaluation"]["probability_maps"],
    "missing_predictions": config["evaluation"]["missing_predictions"],
}
PREDICTION_THRESHOLD = config["postprocessing"]["threshold"] if PREDICTION_READING["probability_maps"] else None
SEEDS = [int(s) for s in config["seeds"]]
# Labels, model construction, input sizes, external folders and the model set of evaluation-only data
# sets: refused here, before any job runs (lesionbench.config_check).
check_run_config(config, workflow.configfiles)
SCRIPTS = str(WORKFLOW_ROOT / "scripts")
SRC = LIBRARY / "lesionbench"

# Each stage file appends the final outputs of the run here.
TARGETS = []


def _load_code_closure():
    """lesionbench.code_closure loaded by path: it is stdlib-only, and the Snakefile may run where the
    library is not installed (e.g. --use-conda)."""
    spec = importlib.util.spec_from_file_location("lesionbench_code_closure", SRC / "code_closure.py")
    closure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(closure)
    return closure


_CODE_CLOSURE = _load_code_closure()


def script_code(script, *modules):
    """Library files a job depends on: every lesionbench module its script imports, transitively
    (lesionbench.code_closure), plus `modules` (paths under src/lesionbench) it loads by name. Editing one
    of them re-runs that job (mtime trigger) and what follows it, and nothing else. Derived, never listed by
    hand: tests/test_code_closure.py checks every rule's `code` input against its script."""
    roots = [Path(SCRIPTS) / script, *(SRC / m for m in modules)]
    return _CODE_CLOSURE.import_closure(roots, SRC)


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def select_keys(*keys):
    """Params function: only the named keys of the data set config block, so a job re-runs when
    what it uses changes and not when another stage's setting does."""

    def pick(wildcards):
        ds = config["datasets"][wildcards.dataset]
        return {k: ds[k] for k in keys if k in ds}

    return pick


def source_code(script):
    """Input function: the closure of `script` plus the data set's source adapter, which the data stage
    imports by name (lesionbench.data.sources.ADAPTERS: source `s` lives in data/sources/s.py)."""

    def files(wildcards):
        source = config["datasets"][wildcards.dataset]["source"]
        return script_code(script, f"data/sources/{source}.py")

    return files


def predictions_dir(dataset, model, seed):
    """Where a model's predictions are: the predict rule's folder, or an external model's own folder
    (external predictions do not depend on the training seed)."""
    if model in EXTERNAL_MODELS:
        return EXTERNAL_MODELS[model].format(dataset=dataset)
    return f"{R}/predictions/{dataset}/{model}/seed{seed}"
