"""Binary predictions on disk: PNG (2D, 0/255) or NIfTI (3D, 0/1, source orientation and affine).

``write_prediction`` takes an array in the prepared layout (see docs/contracts.md) and restores the source
orientation for volumes; ``read_prediction`` inverts it. Any tool's predictions in this layout can be
evaluated as another model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .images import ImageReadError, read_nifti, read_raster, write_nifti, write_png


class PredictionError(ValueError):
    """A prediction file is missing or does not match its reference case."""


def prediction_path(folder: str | os.PathLike, meta: dict) -> Path:
    suffix = ".png" if meta["ndim"] == 2 else ".nii.gz"
    return Path(folder) / f"{meta['case_id']}{suffix}"


def _to_source_order(array: np.ndarray, meta: dict) -> np.ndarray:
    order = meta.get("axis_order")
    return array if order is None else np.transpose(array, np.argsort(order))


def _to_prepared_order(array: np.ndarray, meta: dict) -> np.ndarray:
    order = meta.get("axis_order")
    return array if order is None else np.transpose(array, order)


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
        spacing = tuple(np.asarray(meta["spacing"])[np.argsort(meta["axis_order"])]) \
            if meta.get("axis_order") is not None else tuple(meta["spacing"])
        write_nifti(source, meta.get("affine"), path, spacing=spacing)
    return path


def read_prediction(folder: str | os.PathLike, meta: dict) -> np.ndarray:
    """Read a case's prediction as a bool array in the prepared layout (any non-zero voxel is foreground)."""
    path = prediction_path(folder, meta)
    if not path.is_file():
        raise PredictionError(f"{path}: prediction for test case {meta['case_id']!r} is missing")
    try:
        if meta["ndim"] == 2:
            data = read_raster(path)
            if data.ndim == 3:  # an RGB(A) export: foreground where any colour channel is set
                data = data[..., :3].max(axis=-1)
        else:
            data, _, _ = read_nifti(path)
            data = _to_prepared_order(np.asarray(data), meta)
    except ImageReadError as exc:
        raise PredictionError(str(exc)) from exc
    if tuple(data.shape) != tuple(meta["shape"]):
        raise PredictionError(f"{path}: shape {data.shape} does not match the reference {tuple(meta['shape'])}")
    return np.asarray(data) > 0
