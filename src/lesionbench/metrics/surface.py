"""Borders and surface distances (DESIGN section 3): the one implementation used for every model.

Borders are voxel sets: a voxel is on the border of a mask when it is in the mask and at least one of its
face neighbours (4 in 2D, 6 in 3D) is not, outside the image counting as background; equivalently
``mask XOR binary_erosion(mask, face-connected cross, border_value=0)``. Distances are Euclidean between
border voxel centres, in mm (voxel index times spacing).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

# A distance counts as "within tolerance" when d <= tau * (1 + TOLERANCE_RTOL): the relative allowance only
# absorbs floating-point rounding, so a distance that is exactly tau in exact arithmetic counts.
TOLERANCE_RTOL = 1e-9


def border(mask: np.ndarray) -> np.ndarray:
    """Border voxels of a 2D/3D binary mask.

    Definition: ``mask AND NOT eroded``, where ``eroded`` keeps a voxel when it and all its face neighbours
    are in the mask, voxels outside the image counting as background (so a mask touching the image edge has
    a border along that edge). Equals ``mask ^ scipy.ndimage.binary_erosion(mask)`` (its default structure
    is the face-connected cross, its default ``border_value`` is 0).

    Args:
      mask: 2D or 3D array; non-zero is foreground.

    Returns:
      bool array of the mask's shape.
    """
    m = np.asarray(mask) != 0
    if m.size == 0:
        return m
    core = tuple(slice(1, -1) for _ in range(m.ndim))
    p = np.zeros(tuple(s + 2 for s in m.shape), bool)
    p[core] = m
    interior = m.copy()
    for axis in range(m.ndim):
        for lo, hi in ((0, -2), (2, None)):
            shifted = list(core)
            shifted[axis] = slice(lo, hi)
            interior &= p[tuple(shifted)]
    return m & ~interior


def border_points(mask: np.ndarray, spacing: Sequence[float], origin=None) -> np.ndarray:
    """Border voxel centres of ``mask`` in mm: ``(index + origin) * spacing``, shape (b, ndim), float64.

    ``origin`` is the index of ``mask[0, ...]`` in the full image when ``mask`` is a crop; because voxels
    outside a crop are background of the component it holds, the border of a component computed on its
    bounding box equals its border computed on the full image.
    """
    idx = np.argwhere(border(mask))
    if origin is not None:
        idx += np.asarray(origin, np.int64)
    return idx * np.asarray(spacing, np.float64)


def directed_distances(from_points: np.ndarray, to_points: np.ndarray) -> np.ndarray:
    """For every point of ``from_points``, the Euclidean distance (mm) to the nearest point of ``to_points``.

    Both arrays are (k, ndim) coordinates in mm, ``to_points`` non-empty. Exact nearest neighbours
    (``scipy.spatial.cKDTree``).
    """
    if len(from_points) == 0:
        return np.zeros(0, np.float64)
    tree = cKDTree(to_points, leafsize=32, balanced_tree=False, compact_nodes=False)
    d, _ = tree.query(from_points, k=1)
    return np.asarray(d, np.float64)


def default_penalty(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Distance given when exactly one mask is empty: the image extent diagonal in mm,
    ``sqrt(sum((n_i * s_i)^2))`` over axes of ``n_i`` voxels at spacing ``s_i``. It exceeds every distance
    between two voxel centres of the image."""
    return float(math.sqrt(sum((float(n) * float(s)) ** 2 for n, s in zip(shape, spacing))))


def within(d: np.ndarray, tolerance_mm: float) -> np.ndarray:
    """``d <= tolerance_mm`` (a distance equal to the tolerance counts; see TOLERANCE_RTOL)."""
    return d <= tolerance_mm * (1.0 + TOLERANCE_RTOL)


def hd95(d_pred_to_ref: np.ndarray, d_ref_to_pred: np.ndarray) -> float:
    """95th-percentile Hausdorff distance: ``max(P95(d(P->R)), P95(d(R->P)))``.

    ``d(P->R)`` holds, for each prediction border voxel, the distance to the nearest reference border voxel;
    P95 is ``numpy.percentile(..., 95)`` with linear interpolation. Equals MONAI
    ``HausdorffDistanceMetric(percentile=95, directed=False)``. Both arrays must be non-empty.
    """
    return float(max(np.percentile(d_pred_to_ref, 95), np.percentile(d_ref_to_pred, 95)))


def asd(d_pred_to_ref: np.ndarray, d_ref_to_pred: np.ndarray) -> float:
    """Average symmetric surface distance, pooled:
    ``(sum d(P->R) + sum d(R->P)) / (|border P| + |border R|)``. Equals MONAI
    ``SurfaceDistanceMetric(symmetric=True)``. Both arrays must be non-empty."""
    return float((d_pred_to_ref.sum() + d_ref_to_pred.sum()) / (d_pred_to_ref.size + d_ref_to_pred.size))


def contour_f1(d_pred_to_ref: np.ndarray, d_ref_to_pred: np.ndarray, tolerance_mm: float) -> float:
    """Contour (boundary) F1 at tolerance tau.

    precision = share of prediction border voxels with ``d(P->R) <= tau``; recall = share of reference
    border voxels with ``d(R->P) <= tau``; ``F1 = 2 * precision * recall / (precision + recall)``, and 0 when
    precision + recall = 0. Both arrays must be non-empty.
    """
    precision = float(np.count_nonzero(within(d_pred_to_ref, tolerance_mm))) / d_pred_to_ref.size
    recall = float(np.count_nonzero(within(d_ref_to_pred, tolerance_mm))) / d_ref_to_pred.size
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def nsd(d_pred_to_ref: np.ndarray, d_ref_to_pred: np.ndarray, tolerance_mm: float) -> float:
    """Normalized surface Dice at tolerance tau:
    ``(#{d(P->R) <= tau} + #{d(R->P) <= tau}) / (|border P| + |border R|)``. Equals MONAI
    ``SurfaceDiceMetric(class_thresholds=[tau])`` (voxel-count form). Both arrays must be non-empty."""
    hits = np.count_nonzero(within(d_pred_to_ref, tolerance_mm)) + np.count_nonzero(within(d_ref_to_pred,
                                                                                           tolerance_mm))
    return float(hits) / (d_pred_to_ref.size + d_ref_to_pred.size)
