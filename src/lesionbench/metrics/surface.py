"""Borders and surface distances (docs/metrics.md): the one implementation used for every model.

Borders are voxel sets: a voxel is on the border of a mask when it is in the mask and at least one of its
face neighbours (4 in 2D, 6 in 3D) is not, outside the image counting as background; equivalently
``mask XOR binary_erosion(mask, face-connected cross, border_value=0)``. Distances are Euclidean between
border voxel centres, in mm (voxel index times spacing). That is the ``voxel`` surface definition; the
``surfel`` definition (``evaluation.surface_definition``) measures between surface elements on the
voxel-corner grid weighted by their size (``surfels``), with the same formulas below.

The boundary metrics (HD95, ASD, contour F1, NSD) are written once, on the ``Directed`` summaries of the
two directed distance sets, and evaluate one pair (``summarize(d, tau)``) or many pairs at once
(``summarize(d, tau, group, n_groups)``, every quantity an array over pairs) with the same formulas, for
either surface definition (``SURFACE_DEFINITIONS``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

# A distance counts as "within tolerance" when d <= tau * (1 + TOLERANCE_RTOL): the relative allowance only
# absorbs floating-point rounding, so a distance that is exactly tau in exact arithmetic counts.
TOLERANCE_RTOL = 1e-9

# ``evaluation.surface_definition``: border voxel centres (MONAI's default) or area-weighted surfels.
SURFACE_DEFINITIONS = ("voxel", "surfel")


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


def check_surface_definition(definition) -> str:
    """``definition`` if it is one of SURFACE_DEFINITIONS, else ValueError naming the value."""
    if definition not in SURFACE_DEFINITIONS:
        raise ValueError(f"surface definition must be one of {', '.join(SURFACE_DEFINITIONS)}, got {definition!r}")
    return definition


def check_tolerance(tolerance_mm) -> float:
    """The contour tolerance tau of contour F1 and NSD: a finite number > 0 mm, as the config schema
    requires of ``contour_tolerance_mm`` (``check_mm``)."""
    return check_mm(tolerance_mm, "contour tolerance")


PerPair = np.ndarray | np.float64  # one value per pair, or the value of a single pair


@dataclass(frozen=True)
class Directed:
    """What the boundary metrics use of directed surface distances d(X->Y) (one entry per surface point of
    X, border voxel or surfel), for one pair (scalars) or many pairs (arrays over pairs): ``count`` = size
    of surface X, ``total`` = sum of d, ``close`` = size of the part with d <= tau (``within``), ``p95`` =
    95th percentile of d. Voxel borders count every point once and take ``numpy.percentile`` (linear);
    surfels weigh each point by its length / area (``surfels``), and ``p95`` is surface-distance's robust
    percentile (``weighted_percentile``)."""

    count: PerPair
    total: PerPair
    close: PerPair
    p95: PerPair


def summarize(
    d: np.ndarray,
    tolerance_mm: float,
    group: np.ndarray | None = None,
    n_groups: int = 1,
    weights: np.ndarray | None = None,
) -> Directed:
    """``Directed`` summary of distances ``d``: of all of them (``group`` None), or per pair g of the entries
    whose ``group`` is g (arrays of length ``n_groups``); ``weights`` (None: all 1) are the entries' surface
    element sizes."""
    close = within(d, tolerance_mm)
    if group is None:
        if weights is None:
            return Directed(
                np.float64(d.size),
                np.float64(d.sum()),
                np.float64(np.count_nonzero(close)),
                np.float64(np.percentile(d, 95)) if d.size else np.float64(0.0),
            )
        return Directed(
            np.float64(weights.sum()),
            np.float64((weights * d).sum()),
            np.float64(weights[close].sum()),
            np.float64(weighted_percentile(d, weights, 95)),
        )
    if weights is None:
        return Directed(
            np.bincount(group, minlength=n_groups).astype(np.float64),
            np.bincount(group, weights=d, minlength=n_groups),
            np.bincount(group[close], minlength=n_groups).astype(np.float64),
            segment_percentile(d, group, n_groups, 95),
        )
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    return Directed(
        np.bincount(group, weights=weights, minlength=n_groups),
        np.bincount(group, weights=weights * d, minlength=n_groups),
        np.bincount(group[close], weights=weights[close], minlength=n_groups),
        np.array([weighted_percentile(d[order[a:b]], weights[order[a:b]], 95) for a, b in itertools.pairwise(bounds)]),
    )


def weighted_percentile(d: np.ndarray, weights: np.ndarray, q: float) -> float:
    """surface-distance's robust percentile of distances weighted by surface element size: with the entries
    sorted by (distance, weight), the first distance at which the cumulative weight share reaches q / 100
    (the largest distance if rounding keeps it below). Empty: 0."""
    if d.size == 0:
        return 0.0
    order = np.lexsort((weights, d))
    share = np.cumsum(weights[order]) / np.sum(weights)
    at = min(int(np.searchsorted(share, q / 100.0)), d.size - 1)
    return float(d[order[at]])


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
    ``r`` d(R->P)). Voxel borders: equals MONAI ``HausdorffDistanceMetric(percentile=95, directed=False)``;
    surfels: surface-distance's ``compute_robust_hausdorff(..., 95)``."""
    return np.maximum(p.p95, r.p95)


def asd(p: Directed, r: Directed) -> PerPair:
    """Average symmetric surface distance, pooled: ``(sum d(P->R) + sum d(R->P)) / (|border P| + |border R|)``,
    sums and sizes weighted by surfel size for surfels. Voxel borders: equals MONAI
    ``SurfaceDistanceMetric(symmetric=True)``; surfels: surface-distance's two directed averages
    (``compute_average_surface_distance``) pooled by surface size."""
    return (p.total + r.total) / (p.count + r.count)


def contour_f1(p: Directed, r: Directed) -> PerPair:
    """Contour (boundary) F1 at tolerance tau: precision = share of prediction border voxels with
    ``d(P->R) <= tau``, recall = share of reference border voxels with ``d(R->P) <= tau``,
    ``F1 = 2 * precision * recall / (precision + recall)``, and 0 when precision + recall = 0."""
    precision, recall = p.close / p.count, r.close / r.count
    both = precision + recall
    return np.where(both > 0, 2.0 * precision * recall / np.where(both > 0, both, 1.0), 0.0)


def nsd(p: Directed, r: Directed) -> PerPair:
    """Normalized surface Dice at tolerance tau: ``(#{d(P->R) <= tau} + #{d(R->P) <= tau}) / (|P| + |R|)``
    over the surface points. Voxel borders count every border voxel once: MONAI's form
    (``SurfaceDiceMetric(class_thresholds=[tau])``, also MetricsReloaded's). Surfels weigh each element by
    its area: surface-distance's ``compute_surface_dice_at_tolerance`` (= MONAI with ``use_subvoxels=True``).
    """
    return (p.close + r.close) / (p.count + r.count)
