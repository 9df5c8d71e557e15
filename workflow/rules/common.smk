# Shared helpers for every stage file: result paths, the code each job depends on, target collection.
from pathlib import Path

R = config["results"]
FIGURES = config["figures"]
DATASETS = sorted(config["datasets"])
TRAINED_MODELS = sorted(config["models"])
# Predictions made by other tools, evaluated and compared exactly like a trained model: name -> folder
# (with a `{dataset}` placeholder) holding one prediction file per test case (docs/contracts.md).
EXTERNAL_MODELS = dict(config.get("external_models") or {})
MODELS = sorted(TRAINED_MODELS + list(EXTERNAL_MODELS))
SEEDS = [int(s) for s in config["seeds"]]
# Labels, model construction, input sizes and external folders: refused here, before any job runs.
check_run_config(config, workflow.configfiles)
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
