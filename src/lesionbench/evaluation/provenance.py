"""What a metric table was computed with: the provenance sidecar written beside every per-case table.

``provenance.json`` (next to ``per_case.csv``) records

- ``metric_code_sha256``: SHA-256 over the source of the metric code, i.e. every library file that
  ``lesionbench.metrics.case`` (the per-case and lesion-wise metrics, postprocessing, component labelling)
  imports, transitively (``lesionbench.code_closure``), each hashed as ``relative path NUL bytes NUL``
  in sorted path order; ``metric_code_files`` lists those paths;
- ``settings``: the evaluation settings that change a metric value (contour tolerance, lesion dilation radius,
  distance penalty rule, postprocessing threshold and smallest component, probability-map reading, missing
  predictions scored as empty, surface definition) and the fixed definitions the code
  uses (connectivity, border function, HD95 definition); ``settings_sha256`` is the SHA-256 of their
  canonical JSON (sorted keys).

The study's sanity checks compare these between models (same code, same settings, same connectivity, one
border function for 2D and 3D).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .. import __version__
from ..code_closure import import_closure
from ..components import FULL_CONNECTIVITY
from ..io.atomic import write_json
from ..metrics import surface

PACKAGE_DIR = Path(__file__).resolve().parents[1]
METRIC_ROOTS = ("metrics/case.py",)
HD95_DEFINITION = {
    "voxel": "max(percentile95(d(P->R)), percentile95(d(R->P))), numpy linear percentile over border voxel distances "
    "in mm",
    "surfel": "max(percentile95(d(P->R)), percentile95(d(R->P))), surface-distance's area-weighted percentile over "
    "surfel distances in mm",
}
PENALTY_DIAGONAL = "image extent diagonal"


def metric_code_files() -> list[str]:
    """Library files of the metric code, relative to the package directory, sorted."""
    roots = [PACKAGE_DIR / r for r in METRIC_ROOTS]
    return sorted(str(Path(p).relative_to(PACKAGE_DIR)) for p in import_closure(roots, PACKAGE_DIR))


def metric_code_hash(files: list[str] | None = None) -> str:
    digest = hashlib.sha256()
    for rel in files if files is not None else metric_code_files():
        digest.update(rel.encode() + b"\0" + (PACKAGE_DIR / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def settings_record(settings) -> dict:
    """The evaluation settings of an ``evaluation.Settings`` and the fixed metric definitions, JSON-ready."""
    return {
        "contour_tolerance_mm": float(settings.tolerance_mm),
        "lesion_dilation_mm": float(settings.dilation_mm),
        "distance_penalty": PENALTY_DIAGONAL if settings.penalty_mm is None else float(settings.penalty_mm),
        "threshold": float(settings.threshold),
        "min_component_voxels": int(settings.min_component_voxels),
        # how prediction files were read and a missing one scored (evaluation-only runs)
        "probability_maps": bool(getattr(settings, "probability_maps", False)),
        "missing_as_empty": bool(getattr(settings, "missing_as_empty", False)),
        "connectivity": {f"{ndim}d": int(n) for ndim, n in sorted(FULL_CONNECTIVITY.items())},
        "border_function": f"{surface.border.__module__}.{surface.border.__qualname__}",
        # voxel: border voxel centres; surfel: area-weighted surface elements (docs/metrics.md)
        "surface_definition": getattr(settings, "surface_definition", "voxel"),
        "hd95": HD95_DEFINITION[getattr(settings, "surface_definition", "voxel")],
    }


def canonical_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def evaluation_provenance(settings, *, dataset: str, model: str, seed: int) -> dict:
    files = metric_code_files()
    record = settings_record(settings)
    return {
        "dataset": dataset,
        "model": model,
        "seed": int(seed),
        "lesionbench_version": __version__,
        "metric_code_sha256": metric_code_hash(files),
        "metric_code_files": files,
        "settings": record,
        "settings_sha256": canonical_hash(record),
    }


def write_provenance(path: str | os.PathLike, settings, *, dataset: str, model: str, seed: int) -> dict:
    """Write the sidecar atomically; returns what was written."""
    record = evaluation_provenance(settings, dataset=dataset, model=model, seed=seed)
    write_json(record, path)
    return record
