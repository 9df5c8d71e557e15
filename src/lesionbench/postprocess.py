"""Postprocessing applied to every prediction before any metric, identical for all models (DESIGN section 3).

Inference applies it when writing predictions; evaluation applies it again (it is idempotent), so
predictions made by any other tool get exactly the same treatment.
"""

from __future__ import annotations

import math

import numpy as np

from .components import component_voxels, label_components


def postprocess(prob_or_mask: np.ndarray, threshold: float, min_component_voxels: int) -> np.ndarray:
    """Binarize a probability map (or a mask) and drop small connected components.

    Definition:
      1. foreground = ``prob_or_mask >= threshold`` (a value exactly at the threshold is foreground);
         a boolean or 0/1 mask passes through unchanged for any ``0 < threshold <= 1``;
      2. connected components of the foreground (full connectivity: 8 in 2D, 26 in 3D) with fewer than
         ``min_component_voxels`` voxels are removed (``min_component_voxels <= 1`` removes nothing).

    Idempotent: ``postprocess(postprocess(x, t, m), t, m) == postprocess(x, t, m)`` for ``0 < t <= 1``.

    Args:
      prob_or_mask: 2D or 3D array of probabilities in [0, 1], or a binary mask (bool or 0/1).
      threshold: finite number; voxels with value >= threshold are foreground.
      min_component_voxels: smallest component size (in voxels) that is kept.

    Returns:
      A bool array of the input's shape.

    Raises:
      ValueError: on a non-2D/3D input, a non-finite threshold, NaN in the input or a negative size.
    """
    array = np.asarray(prob_or_mask)
    if array.ndim not in (2, 3):
        raise ValueError(f"postprocess: expected a 2D or 3D array, got shape {array.shape}")
    if not math.isfinite(float(threshold)):
        raise ValueError(f"postprocess: threshold must be finite, got {threshold!r}")
    if int(min_component_voxels) != min_component_voxels or min_component_voxels < 0:
        raise ValueError(f"postprocess: min_component_voxels must be a non-negative integer, "
                         f"got {min_component_voxels!r}")
    if array.dtype == bool:
        mask = array.copy() if 0 < threshold <= 1 else array.astype(np.float32) >= threshold
    else:
        if array.dtype.kind == "f" and np.isnan(array).any():
            raise ValueError("postprocess: the probability map holds NaN values")
        mask = array >= threshold
    if min_component_voxels > 1 and mask.any():
        labels, n = label_components(mask)
        keep = np.zeros(n + 1, bool)
        keep[1:] = component_voxels(labels, n) >= int(min_component_voxels)
        mask = keep[labels]
    return np.ascontiguousarray(mask, dtype=bool)
