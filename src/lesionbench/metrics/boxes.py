"""Pairs of components found by their bounding boxes, and the voxels two components share.

Boxes are half-open index ranges ``lo .. hi`` (arrays of shape (n, ndim)); a voxel centre lies at index
times spacing (mm). Every pairwise step of the lesion-wise evaluation starts from these pairs, so it never
touches components that cannot meet.
"""

from __future__ import annotations

import math

import numpy as np

from .indexing import expand_ranges
from .parts import Parts
from .surface import TOLERANCE_RTOL

# Above this many box pairs, ``box_pairs`` sweeps instead of testing every pair (the sweep is already ~10x
# faster at 200 x 200 boxes) ...
_ALL_PAIRS_MAX = 1_024
# ... and tests the candidates of the sweep in chunks of about this many pairs (bounded memory).
_PAIRS_PER_CHUNK = 2_000_000


def box_gaps(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray, spacing) -> np.ndarray:
    """Smallest distance (mm) between voxel centres of half-open boxes (broadcast over leading axes)."""
    gap = np.maximum(0, np.maximum(lo_b - (hi_a - 1), lo_a - (hi_b - 1))) * np.asarray(spacing, float)
    return np.sqrt((gap * gap).sum(axis=-1))


def _meet(lo_a, hi_a, lo_b, hi_b, spacing, within_mm) -> np.ndarray:
    """Whether boxes intersect (``within_mm`` None) or lie within ``within_mm`` of each other."""
    if within_mm is None:
        return np.all((lo_a < hi_b) & (lo_b < hi_a), axis=-1)
    return box_gaps(lo_a, hi_a, lo_b, hi_b, spacing) <= within_mm * (1 + TOLERANCE_RTOL)


def box_pairs(
    lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray, spacing=None, within_mm: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) whose boxes ``lo_a[i]..hi_a[i]`` and ``lo_b[j]..hi_b[j]`` (half-open) intersect,
    or, with ``within_mm``, whose voxel centres may lie within that distance (``box_gaps <= within_mm``).

    Few boxes: every pair is tested. Many: a sweep along axis 0 (``_swept_pairs``) tests each box of ``a``
    only against the boxes of ``b`` starting within reach, so many small components cost about linear time;
    the few boxes of ``b`` much longer than the others along axis 0 would widen every reach, so they are
    tested against every box of ``a`` instead.
    """
    none = np.zeros(0, np.int64)
    if len(lo_a) == 0 or len(lo_b) == 0:
        return none, none
    if len(lo_a) * len(lo_b) <= _ALL_PAIRS_MAX:
        a, b = np.nonzero(_meet(lo_a[:, None], hi_a[:, None], lo_b[None], hi_b[None], spacing, within_mm))
        return a.astype(np.int64), b.astype(np.int64)
    extent = hi_b[:, 0] - lo_b[:, 0]
    long = extent > max(16, 4 * int(np.median(extent)))
    found_a, found_b = [none], [none]
    for j in np.flatnonzero(long):
        i = np.flatnonzero(_meet(lo_a, hi_a, lo_b[j], hi_b[j], spacing, within_mm))
        found_a.append(i)
        found_b.append(np.full(len(i), j, np.int64))
    for a, b in _swept_pairs(lo_a, hi_a, lo_b, hi_b, np.flatnonzero(~long), spacing, within_mm):
        found_a.append(a)
        found_b.append(b)
    return np.concatenate(found_a), np.concatenate(found_b)


def _swept_pairs(lo_a, hi_a, lo_b, hi_b, candidates_b, spacing, within_mm):
    """The meeting pairs of boxes of ``a`` and the boxes ``candidates_b`` of ``b``, in chunks (a, b).

    With the candidates sorted by their start along axis 0, the boxes that can meet box i of ``a`` start
    in ``[lo_a[i, 0] - reach, hi_a[i, 0] + margin)``: one contiguous run of the sorted order, where
    ``margin`` is the number of voxels ``within_mm`` can bridge along axis 0 and ``reach`` adds the longest
    candidate's extent. Those runs are expanded into pairs and tested, about ``_PAIRS_PER_CHUNK`` at a time.
    """
    if len(candidates_b) == 0:
        return
    margin = 0 if within_mm is None else math.floor(within_mm * (1 + TOLERANCE_RTOL) / float(spacing[0])) + 1
    order = candidates_b[np.argsort(lo_b[candidates_b, 0], kind="stable")]
    starts = lo_b[order, 0]
    reach = int((hi_b[order, 0] - starts).max()) + margin
    first = np.searchsorted(starts, lo_a[:, 0] - reach, side="left")
    counts = np.searchsorted(starts, hi_a[:, 0] + margin, side="left") - first
    for chunk in _chunks(counts, _PAIRS_PER_CHUNK):
        at, which = expand_ranges(first[chunk], counts[chunk])
        a, b = which + chunk.start, order[at]
        meet = _meet(lo_a[a], hi_a[a], lo_b[b], hi_b[b], spacing, within_mm)
        yield a[meet], b[meet]


def _chunks(counts: np.ndarray, budget: int):
    """Consecutive slices of ``counts`` each summing to at most ``budget`` (or holding a single element)."""
    done = np.concatenate(([0], np.cumsum(counts)))  # done[k]: total of counts[:k]
    start = 0
    while start < len(counts):
        stop = max(int(np.searchsorted(done, done[start] + budget, side="right")) - 1, start + 1)
        yield slice(start, stop)
        start = stop


def overlap_views(mask_a: np.ndarray, lo_a: np.ndarray, mask_b: np.ndarray, lo_b: np.ndarray):
    """The parts of two boxed masks (box starts ``lo_a``, ``lo_b``) over the intersection of their boxes
    (empty views when the boxes do not intersect)."""
    hi_a = lo_a + np.asarray(mask_a.shape)
    hi_b = lo_b + np.asarray(mask_b.shape)
    lo = np.maximum(lo_a, lo_b)
    hi = np.maximum(np.minimum(hi_a, hi_b), lo)
    sa = tuple(slice(int(x), int(y)) for x, y in zip(lo - lo_a, hi - lo_a))
    sb = tuple(slice(int(x), int(y)) for x, y in zip(lo - lo_b, hi - lo_b))
    return mask_a[sa], mask_b[sb]


def shared_voxel_counts(a: Parts, b: Parts) -> dict[tuple[int, int], int]:
    """|A_i & B_j| for every pair (component i of ``a``, component j of ``b``, 0-based) sharing any voxel:
    each pair's masks compared over the intersection of their boxes."""
    out = {}
    ia, ib = box_pairs(a.lo, a.hi, b.lo, b.hi)
    lo = np.maximum(a.lo[ia], b.lo[ib]).tolist()
    hi = np.minimum(a.hi[ia], b.hi[ib]).tolist()
    for i, j, start, stop in zip(ia.tolist(), ib.tolist(), lo, hi):
        count = int(np.count_nonzero(a.window(i, start, stop) & b.window(j, start, stop)))
        if count:
            out[(i, j)] = count
    return out
