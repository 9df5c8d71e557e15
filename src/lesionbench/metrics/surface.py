"""Borders and surface distances (docs/metrics.md): the one implementation used for every model.

Borders are voxel sets: a voxel is on the border of a mask when it is in the mask and at least one of its
face neighbours (4 in 2D, 6 in 3D) is not, outside the image counting as background; equivalently
``mask XOR binary_erosion(mask, face-connected cross, border_value=0)``. Distances are Euclidean between
border voxel centres, in mm (voxel index times spacing).

The boundary metrics (HD95, ASD, contour F1, NSD) are written once, on the ``Directed`` summaries of the
two directed distance sets, and evaluate one pair (``summarize(d, tau)``) or many pairs at once
(``summarize(d, tau, group, n_groups)``, every quantity an array over pairs) with the same formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


def check_mm(value, what: str, *, zero_allowed: bool = False) -> float:
    """``value`` as a float, or ValueError naming ``what`` and the value: a finite number of mm, > 0 (or
    >= 0 with ``zero_allowed``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and (number >= 0 if zero_allowed else number > 0)):
        raise ValueError(f"{what} must be a finite number {'>=' if zero_allowed else '>'} 0 mm, got {value!r}")
    return number


def check_tolerance(tolerance_mm) -> float:
    """The contour tolerance tau of contour F1 and NSD: a finite number > 0 mm, as the config schema
    requires of ``contour_tolerance_mm`` (``check_mm``)."""
    return check_mm(tolerance_mm, "contour tolerance")


PerPair = np.ndarray | np.float64   # one value per pair, or the value of a single pair


@dataclass(frozen=True)
class Directed:
    """What the boundary metrics use of directed border distances d(X->Y) (one entry per border voxel of
    X), for one pair (scalars) or many pairs (arrays over pairs): ``count`` = |border X|, ``total`` = sum of
    d, ``close`` = #{d <= tau} (``within``), ``p95`` = 95th percentile of d (``numpy.percentile``, linear)."""

    count: PerPair
    total: PerPair
    close: PerPair
    p95: PerPair


def summarize(d: np.ndarray, tolerance_mm: float, group: np.ndarray | None = None,
              n_groups: int = 1) -> Directed:
    """``Directed`` summary of distances ``d``: of all of them (``group`` None), or per pair g of the entries
    whose ``group`` is g (arrays of length ``n_groups``)."""
    if group is None:
        return Directed(np.float64(d.size), np.float64(d.sum()),
                        np.float64(np.count_nonzero(within(d, tolerance_mm))),
                        np.float64(np.percentile(d, 95)) if d.size else np.float64(0.0))
    return Directed(np.bincount(group, minlength=n_groups).astype(np.float64),
                    np.bincount(group, weights=d, minlength=n_groups),
                    np.bincount(group[within(d, tolerance_mm)], minlength=n_groups).astype(np.float64),
                    segment_percentile(d, group, n_groups, 95))


def segment_percentile(values: np.ndarray, segment: np.ndarray, n_segments: int, q: float) -> np.ndarray:
    """Per segment, the q-th percentile of ``values`` with linear interpolation (``numpy.percentile``'s
    default): with the segment's n values sorted as v_0..v_{n-1} and h = (n - 1) q / 100, the result is
    ``v_floor(h) + (h - floor(h)) * (v_ceil(h) - v_floor(h))``. Empty segments give 0."""
    out = np.zeros(n_segments)
    if values.size == 0:
        return out
    order = np.lexsort((values, segment))
    v = values[order]
    counts = np.bincount(segment, minlength=n_segments)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    h = (counts[has] - 1) * (q / 100.0)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, counts[has] - 1)
    a, b = v[starts[has] + lo], v[starts[has] + hi]
    t = h - lo
    out[has] = np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)  # numpy's own lerp, bit for bit
    return out


def hd95(p: Directed, r: Directed) -> PerPair:
    """95th-percentile Hausdorff distance: ``max(P95(d(P->R)), P95(d(R->P)))`` (``p`` summarizes d(P->R),
    ``r`` d(R->P)). Equals MONAI ``HausdorffDistanceMetric(percentile=95, directed=False)``."""
    return np.maximum(p.p95, r.p95)


def asd(p: Directed, r: Directed) -> PerPair:
    """Average symmetric surface distance, pooled: ``(sum d(P->R) + sum d(R->P)) / (|border P| + |border R|)``.
    Equals MONAI ``SurfaceDistanceMetric(symmetric=True)``."""
    return (p.total + r.total) / (p.count + r.count)


def contour_f1(p: Directed, r: Directed) -> PerPair:
    """Contour (boundary) F1 at tolerance tau: precision = share of prediction border voxels with
    ``d(P->R) <= tau``, recall = share of reference border voxels with ``d(R->P) <= tau``,
    ``F1 = 2 * precision * recall / (precision + recall)``, and 0 when precision + recall = 0."""
    precision, recall = p.close / p.count, r.close / r.count
    both = precision + recall
    return np.where(both > 0, 2.0 * precision * recall / np.where(both > 0, both, 1.0), 0.0)


def nsd(p: Directed, r: Directed) -> PerPair:
    """Normalized surface Dice at tolerance tau, counted in border voxels:
    ``(#{d(P->R) <= tau} + #{d(R->P) <= tau}) / (|border P| + |border R|)``. This is MONAI's form
    (``SurfaceDiceMetric(class_thresholds=[tau])``, also MetricsReloaded's): every border voxel weighs the
    same. DeepMind's surface-distance library instead weighs each border element by its surface area
    (marching-cubes surfels), so its values differ, most on oblique or anisotropic borders."""
    return (p.close + r.close) / (p.count + r.count)
