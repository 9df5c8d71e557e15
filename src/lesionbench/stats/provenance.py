"""``results/provenance.json``: what the study's results were computed with.

- ``metric_settings``: per data set, the evaluation settings recorded by the evaluation beside its metric
  tables (contour tolerance, lesion dilation radius, distance-penalty rule, postprocessing threshold and
  smallest component, connectivity, border function, HD95 definition), with the metric-code and settings
  hashes; a data set whose models disagree lists every distinct record (the sanity check fails on it);
- ``statistics`` and ``claim``: the statistics and verdict settings;
- ``packages``: installed versions of the packages the pipeline runs on (``importlib.metadata``);
- ``git_commit``: the commit of the code that ran (``git rev-parse HEAD`` in the checkout holding the
  imported ``lesionbench`` package, with ``git_dirty`` when tracked files differ from it; ``unknown`` outside
  a git checkout, e.g. an installed package);
- ``config_sha256``: SHA-256 of the resolved config as canonical JSON (sorted keys), so two runs with the
  same hash ran the same configuration.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

from ..io.atomic import write_json
from .sanity import read_provenance

PACKAGES = ("lesionbench", "numpy", "scipy", "pandas", "scikit-image", "connected-components-3d", "torch",
            "segmentation-models-pytorch", "monai", "nibabel", "pillow", "matplotlib", "snakemake")


def package_versions(names=PACKAGES) -> dict:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(directory) -> dict:
    """{"git_commit": sha or "unknown", "git_dirty": bool or None}."""
    def git(*args):
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"git_commit": "unknown", "git_dirty": None}
        status = git("status", "--porcelain", "--untracked-files=no")
        return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": None}


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def metric_settings(provenance_paths) -> dict:
    """{dataset: [distinct {metric_code_sha256, settings_sha256, settings, runs}]} from the sidecars."""
    out: dict = {}
    for p in provenance_paths:
        r = read_provenance(p)
        records = out.setdefault(r["dataset"], [])
        key = (r["metric_code_sha256"], r["settings_sha256"])
        for rec in records:
            if (rec["metric_code_sha256"], rec["settings_sha256"]) == key:
                rec["runs"].append(f"{r['model']}/seed{r['seed']}")
                break
        else:
            records.append({"metric_code_sha256": r["metric_code_sha256"], "settings_sha256": r["settings_sha256"],
                            "settings": r["settings"], "runs": [f"{r['model']}/seed{r['seed']}"]})
    for records in out.values():
        for rec in records:
            rec["runs"].sort()
    return dict(sorted(out.items()))


CODE_DIR = Path(__file__).resolve().parents[1]


def study_provenance(provenance_paths, config: dict, code_dir=CODE_DIR) -> dict:
    return {
        "metric_settings": metric_settings(provenance_paths),
        "statistics": config.get("statistics", {}),
        "claim": config.get("claim", {}),
        "packages": package_versions(),
        **git_state(code_dir),
        "config_sha256": config_hash(config),
    }


def write_study_provenance(provenance_paths, config: dict, path, code_dir=CODE_DIR) -> dict:
    record = study_provenance(provenance_paths, config, code_dir)
    write_json(record, path)
    return record


__all__ = [
    "config_hash",
    "git_state",
    "metric_settings",
    "package_versions",
    "study_provenance",
    "write_study_provenance",
]
