"""Predictions on disk: written as PNG (2D, 0/255) or NIfTI (3D, 0/1, source orientation and affine); read
from any supported file named ``{case_id}`` plus a suffix (.png, .tif, .nii.gz, ... as the references).

``write_prediction`` takes an array in the prepared layout (see docs/contracts.md) and restores the source
orientation for volumes; ``read_prediction`` inverts it and checks what the file holds:

- a binary mask: values within {0, 1} or within {0, 255} (any non-zero voxel is foreground);
- a label map, when the reference case carries label settings (``meta["source"]["labels"]``, recorded by the
  ``references`` source): values within {0} and the data set's label values; lesion = the lesion labels
  (default: every non-zero label that is not ignored);
- a probability map, only when a threshold is given (``evaluation.probability_maps``, ``lesionbench compare
  --threshold``): floats in [0, 1] or uint8 read as value / 255; foreground = value >= threshold.

Anything else (e.g. a soft PNG with grey levels, unknown label values) is refused with the values found, so
a probability map is never silently read as "any non-zero voxel". NIfTI predictions must carry the
reference's affine (or spacing) within ``AFFINE_TOLERANCE``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .images import (
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    ImageReadError,
    is_nifti,
    read_nifti,
    read_raster,
    suffix_of,
    write_nifti,
    write_png,
)

# Affines and spacings of a prediction and its reference agree when every entry differs by at most this
# (mm; absolute plus the same relative share): float32 header rounding passes, a different grid does not.
AFFINE_TOLERANCE = 1e-3
PREDICTION_SUFFIXES = NIFTI_SUFFIXES + RASTER_SUFFIXES


class PredictionError(ValueError):
    """A prediction file is missing or does not match its reference case."""


def prediction_path(folder: str | os.PathLike, meta: dict) -> Path:
    """Where ``write_prediction`` puts a case's prediction (PNG for 2D, NIfTI for 3D)."""
    suffix = ".png" if meta["ndim"] == 2 else ".nii.gz"
    return Path(folder) / f"{meta['case_id']}{suffix}"


def prediction_files(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """Image files of a predictions folder by case id (name minus suffix); other files (e.g. nnU-Net's
    plans.json, dataset.json, predict_from_raw_data_args.json) and hidden files are not listed."""
    files: dict[str, list[Path]] = {}
    for p in sorted(Path(folder).iterdir()):
        suffix = suffix_of(p)
        if p.name.startswith(".") or suffix not in PREDICTION_SUFFIXES or not p.is_file():
            continue
        files.setdefault(p.name[: -len(suffix)], []).append(p)
    return files


def find_prediction(folder: str | os.PathLike, meta: dict, files: dict | None = None) -> Path:
    """The one prediction file of a case: ``{case_id}`` plus any supported suffix.

    Raises PredictionError when there is none, or when there are two (e.g. ``c1.nii`` and ``c1.nii.gz``)."""
    files = prediction_files(folder) if files is None else files
    found = files.get(meta["case_id"], [])
    if not found:
        raise PredictionError(
            f"{prediction_path(folder, meta)}: prediction for test case {meta['case_id']!r} is missing"
        )
    if len(found) > 1:
        raise PredictionError(
            f"{folder}: two prediction files for case {meta['case_id']!r}: {', '.join(p.name for p in found)}"
        )
    return found[0]


def _to_source_order(array: np.ndarray, meta: dict) -> np.ndarray:
    order = meta.get("axis_order")
    return array if order is None else np.transpose(array, np.argsort(order))


def _to_prepared_order(array: np.ndarray, meta: dict) -> np.ndarray:
    order = meta.get("axis_order")
    return array if order is None or len(order) != array.ndim else np.transpose(array, order)


def write_prediction(mask: np.ndarray, meta: dict, folder: str | os.PathLike) -> Path:
    """Write a binary mask (prepared layout) as the case's prediction file; returns its path."""
    mask = np.asarray(mask)
    if tuple(mask.shape) != tuple(meta["shape"]):
        raise PredictionError(f"case {meta['case_id']!r}: prediction shape {mask.shape} != {tuple(meta['shape'])}")
    binary = (mask > 0).astype(np.uint8)
    path = prediction_path(folder, meta)
    if meta["ndim"] == 2:
        write_png(binary * 255, path)
    else:
        source = _to_source_order(binary, meta)
        spacing = (
            tuple(np.asarray(meta["spacing"])[np.argsort(meta["axis_order"])])
            if meta.get("axis_order") is not None
            else tuple(meta["spacing"])
        )
        write_nifti(source, meta.get("affine"), path, spacing=spacing)
    return path


def _reference_name(meta: dict) -> str:
    mask = (meta.get("source") or {}).get("mask")
    return f"reference {mask}" if mask else f"reference case {meta['case_id']!r}"


def _check_geometry(path: Path, affine: np.ndarray, spacing, meta: dict) -> None:
    """A NIfTI prediction must lie on the reference grid: same affine (when the reference has one), else
    the same spacing in the prepared axis order."""
    if meta.get("affine") is not None and np.asarray(meta["affine"]).shape == affine.shape:
        ref = np.asarray(meta["affine"], float)
        if not np.allclose(affine, ref, rtol=AFFINE_TOLERANCE, atol=AFFINE_TOLERANCE):
            raise PredictionError(
                f"{path}: affine {np.round(affine, 4).tolist()} does not match the {_reference_name(meta)} "
                f"affine {np.round(ref, 4).tolist()} (tolerance {AFFINE_TOLERANCE}); the prediction is on "
                f"another grid or orientation"
            )
        return
    ours = np.asarray(spacing, float)
    order = meta.get("axis_order")
    if order is not None and len(order) == len(ours):
        ours = ours[list(order)]
    ref = np.asarray(meta["spacing"], float)
    if ours.shape == ref.shape and not np.allclose(ours, ref, rtol=AFFINE_TOLERANCE, atol=AFFINE_TOLERANCE):
        raise PredictionError(
            f"{path}: spacing {ours.round(6).tolist()} mm does not match the "
            f"{_reference_name(meta)} spacing {ref.round(6).tolist()} mm"
        )


# Integer masks whose values span at most this many steps are scanned value by value (label maps).
DENSE_SPAN = 8


def distinct_values(data: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a mask-like array, in one or two passes over a CT-sized volume.

    Integer and bool masks: the minimum and maximum occur by definition, so only the values strictly between
    them are looked for (none in a binary mask), while the values span at most ``DENSE_SPAN``; otherwise the
    non-zero voxels (few in a lesion mask) are sorted. The array is read in its memory order, so a NIfTI volume
    (Fortran order) costs no transposed copy."""
    data = np.asarray(data)
    flat = data.ravel(order="K")
    if flat.size and (data.dtype == bool or np.issubdtype(data.dtype, np.integer)):
        lo, hi = flat.min(), flat.max()
        if int(hi) - int(lo) <= DENSE_SPAN:
            between = [v for v in range(int(lo) + 1, int(hi)) if np.any(flat == v)]
            return np.array(sorted({int(lo), *between, int(hi)}), dtype=data.dtype)
    nonzero = flat[flat != 0]
    values = np.unique(nonzero)
    if nonzero.size < flat.size:
        values = np.union1d(values, np.zeros(1, data.dtype))
    return values


def _shown(values) -> str:
    values = [v.item() if hasattr(v, "item") else v for v in values]
    return str(values[:12])[:-1] + (f", ... ({len(values)} values)]" if len(values) > 12 else "]")


def foreground(data: np.ndarray, path, *, labels: dict | None = None, threshold: float | None = None) -> np.ndarray:
    """Lesion foreground (bool) of a prediction array by the rules of the module docstring.

    ``labels``: ``{"lesion": [...] or None, "ignore": [...] or None, "values": [...] or None}`` when the
    reference is a label map (``values``: every label value a mask may hold); None = binary masks only.
    ``threshold``: read the file as a probability map (foreground = value >= threshold).
    """
    data = np.asarray(data)
    if data.dtype == bool:
        return data
    if not np.issubdtype(data.dtype, np.number):
        raise PredictionError(f"{path}: prediction has non-numeric type {data.dtype}")
    values = distinct_values(data)
    if values.size and not np.all(np.isfinite(values)):
        raise PredictionError(f"{path}: prediction holds NaN or infinite values")
    binary = set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}
    if threshold is not None:
        if binary:
            return data != 0
        if data.dtype == np.uint8:
            return data.astype(np.float32) / 255.0 >= threshold
        if data.dtype.kind != "f" or values.min() < 0 or values.max() > 1:
            raise PredictionError(
                f"{path}: read as a probability map (threshold {threshold}) but holds values "
                f"{_shown(values)} outside [0, 1] (floats in [0, 1], or uint8 read as / 255)"
            )
        return data >= threshold
    integral = np.array_equal(values, np.round(values))
    lesion = (labels or {}).get("lesion")
    ignore = (labels or {}).get("ignore") or []
    allowed = {0} | ({1} if not lesion else set())
    if labels:
        allowed |= set(labels.get("values") or []) | set(lesion or []) | set(ignore)
    if integral and set(values.tolist()) <= allowed:
        if lesion:
            return np.isin(data, lesion)
        return (data != 0) & ~np.isin(data, ignore) if ignore else data != 0
    if integral and set(values.tolist()) <= {0, 255} and 255 not in allowed:
        return data != 0
    what = "fractional values (a probability map?)" if not integral else "values"
    label_text = f"0 and the label values {sorted(allowed - {0})}" if labels else "0/1 or 0/255"
    raise PredictionError(
        f"{path}: prediction holds {what} {_shown(values)}; a prediction must hold "
        f"{label_text}. A probability map needs a threshold (lesionbench compare "
        f"--threshold X; config evaluation.probability_maps: true with postprocessing.threshold)"
    )


def read_prediction(
    folder: str | os.PathLike,
    meta: dict,
    *,
    threshold: float | None = None,
    labels: dict | None = None,
    path: str | os.PathLike | None = None,
) -> np.ndarray:
    """Read a case's prediction as a bool array in the prepared layout (rules: module docstring).

    ``labels`` defaults to the reference's label settings (``meta["source"]["labels"]``; none for binary
    references); ``path`` defaults to ``find_prediction(folder, meta)``.
    """
    path = Path(path) if path is not None else find_prediction(folder, meta)
    if labels is None:
        labels = (meta.get("source") or {}).get("labels")
    shape = tuple(meta["shape"])
    try:
        if is_nifti(path):
            data, affine, spacing = read_nifti(path)
            data = np.asarray(data)
            if len(shape) == 2 and data.ndim == 3 and data.shape[-1] == 1:
                data, spacing = data[..., 0], spacing[:2]  # a 2D image saved as a one-slice volume
            if data.ndim == len(shape):
                data = _to_prepared_order(data, meta)
        else:
            data = read_raster(path)
            if data.ndim == 3 and len(shape) == 2:  # an RGB(A) export: foreground where any colour is set
                data = data[..., :3].max(axis=-1)
            affine, spacing = None, None
    except ImageReadError as exc:
        raise PredictionError(str(exc)) from exc
    if tuple(data.shape) != shape:
        raise PredictionError(
            f"{path}: shape {data.shape} does not match the reference {shape} ({_reference_name(meta)})"
        )
    if affine is not None:
        _check_geometry(path, affine, spacing, meta)
    return foreground(data, path, labels=labels, threshold=threshold)
