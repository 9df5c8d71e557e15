# Shared helpers for every rule file: result paths, the code each rule depends on, target collection.
from pathlib import Path

R = config["results"]
FIGURES = config["figures"]
DATASETS = sorted(config["datasets"])
MODELS = sorted(config["models"])
SEEDS = [int(s) for s in config["seeds"]]
SCRIPTS = str(Path(workflow.basedir) / "scripts")
SRC = Path(workflow.basedir) / "src" / "lesionbench"

# Each rule file appends the outputs that `rule all` must produce.
TARGETS = []


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="[A-Za-z0-9_-]+",
    seed=r"\d+",


def code(*parts):
    """Library files a rule's result depends on: editing them re-runs that rule (mtime trigger) and only
    what follows it. Directories expand to their .py files."""
    files = []
    for part in parts:
        path = SRC / part
        files += sorted(str(p) for p in path.rglob("*.py")) if path.is_dir() else [str(path)]
    return files


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]
