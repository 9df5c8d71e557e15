"""Postprocessing applied to every prediction before any metric, identical for all models (docs/metrics.md).

Inference applies it when writing predictions; evaluation applies it again (it is idempotent), so
predictions made by any other tool get exactly the same treatment.
"""

from __future__ import annotations

import math

import numpy as np

from .components import label_components


def binarize(prob_or_mask: np.ndarray, threshold: float) -> np.ndarray:
    """Step 1 of ``postprocess``: ``prob_or_mask >= threshold`` as a bool array.

    A bool input with ``0 < threshold <= 1`` is returned as it is (not copied): it is already binary and
    ``>=`` would not change it.

    Raises:
      ValueError: on a non-finite threshold or NaN in a floating-point input.
    """
    array = np.asarray(prob_or_mask)
    if not math.isfinite(float(threshold)):
        raise ValueError(f"postprocess: threshold must be finite, got {threshold!r}")
    if array.dtype == bool:
        return array if 0 < threshold <= 1 else array.astype(np.float32) >= threshold
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError("postprocess: the probability map holds NaN values")
    return array >= threshold


def postprocess(prob_or_mask: np.ndarray, threshold: float, min_component_voxels: int) -> np.ndarray:
    """Binarize a probability map (or a mask) and drop small connected components.

    Definition:
      1. foreground = ``prob_or_mask >= threshold`` (a value exactly at the threshold is foreground);
         a boolean or 0/1 mask passes through unchanged for any ``0 < threshold <= 1``;
      2. connected components of the foreground (full connectivity: 8 in 2D, 26 in 3D, the partition of
         ``lesionbench.components.label_components``) with fewer than ``min_component_voxels`` voxels are
         removed (``min_component_voxels <= 1`` removes nothing).

    Idempotent: ``postprocess(postprocess(x, t, m), t, m) == postprocess(x, t, m)`` for ``0 < t <= 1``.

    Args:
      prob_or_mask: 2D or 3D array of probabilities in [0, 1], or a binary mask (bool or 0/1).
      threshold: finite number; voxels with value >= threshold are foreground.
      min_component_voxels: smallest component size (in voxels) that is kept.

    Returns:
      A new bool array of the input's shape.

    Raises:
      ValueError: on a non-2D/3D input, a non-finite threshold, NaN in the input or a negative size.
    """
    array = np.asarray(prob_or_mask)
    if array.ndim not in (2, 3):
        raise ValueError(f"postprocess: expected a 2D or 3D array, got shape {array.shape}")
    if int(min_component_voxels) != min_component_voxels or min_component_voxels < 0:
        raise ValueError(f"postprocess: min_component_voxels must be a non-negative integer, "
                         f"got {min_component_voxels!r}")
    mask = binarize(array, threshold)
    if min_component_voxels > 1 and mask.any():
        labels, n = label_components(mask)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        if (sizes[1:] < min_component_voxels).any():
            keep = sizes >= int(min_component_voxels)
            keep[0] = False
            return keep[labels]
    return np.array(mask, dtype=bool, copy=True)
