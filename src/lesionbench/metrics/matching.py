"""Lesion-wise matching with the BraTS 2023 rules: merged lesions and their hits (docs/metrics.md).

``ref`` and ``pred`` are ``parts.Parts``: components of the reference and of the prediction, both already
restricted by the ignore mask and the prediction already postprocessed.

* Dilation: each reference lesion L is dilated by a physical radius r (mm): ``D(L)`` holds every voxel
  whose centre lies within Euclidean distance <= r (spacing-aware) of a voxel centre of L.
* Merging: lesions whose dilations overlap or touch (full connectivity) are merged; a merged lesion is one
  connected region of the union of all dilations and holds one or more reference lesions.
* Hits: a predicted component sharing at least one voxel with the dilation of a merged lesion is a hit for
  it; a merged lesion may have several hits, and a component overlapping the dilations of two merged
  lesions is a hit for both.

Both rules are decided without dilating whole masks. "P shares a voxel with D(L)" is "P overlaps L, or the
smallest distance between the border voxels of P and of L is <= r" (the closest voxels of two disjoint sets
are border voxels of both). Two lesions whose borders lie within r always merge, and farther than 2r plus
one voxel diagonal never do; only the pairs in between are settled on their boxed dilations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import surface
from .boxes import box_pairs, overlap_views
from .indexing import isin_sorted
from .nearest import Nearest, pair_min_distances
from .parts import Parts


def check_dilation(dilation_mm) -> float:
    """The lesion dilation radius r: a finite number >= 0 mm, as the config schema requires of
    ``lesion_dilation_mm`` (``surface.check_mm``)."""
    return surface.check_mm(dilation_mm, "lesion dilation radius", zero_allowed=True)


@dataclass
class Matching:
    """Merged lesions and hits. ``lesions``: 0-based indices of the evaluated (non-empty) reference
    lesions; ``group[t]``: merged-lesion number of ``lesions[t]`` (0-based, in the order of each merged
    lesion's first member); ``members[g]`` / ``hits[g]``: reference lesions and predicted components
    (0-based) of merged lesion g."""

    lesions: list[int]
    group: list[int]
    members: list[list[int]]
    hits: list[list[int]]


def match(ref: Parts, pred: Parts, dilation_mm: float, overlaps: dict[tuple[int, int], int],
          nearest: Nearest | None = None) -> Matching:
    """Merged lesions and their hits (module docstring). ``overlaps``: ``boxes.shared_voxel_counts(ref,
    pred)``; ``nearest``: ``nearest.nearest_borders(ref, pred)``, which settles most hits without new
    queries (``find_hits``)."""
    dilation_mm = check_dilation(dilation_mm)
    lesions = np.flatnonzero(ref.voxels > 0)
    group = merge_lesions(ref, lesions, dilation_mm)
    n_groups = int(group.max()) + 1 if len(group) else 0
    members: list[list[int]] = [[] for _ in range(n_groups)]
    for k, g in zip(lesions.tolist(), group.tolist()):
        members[g].append(k)
    hits: list[set[int]] = [set() for _ in range(n_groups)]
    t, j = find_hits(ref, pred, lesions, dilation_mm, overlaps, nearest)
    for g, component in zip(group[t].tolist(), j.tolist()):
        hits[g].add(component)
    return Matching(lesions=lesions.tolist(), group=group.tolist(), members=members,
                    hits=[sorted(h) for h in hits])


def merge_lesions(ref: Parts, lesions: np.ndarray, dilation_mm: float) -> np.ndarray:
    """Merged-lesion number (0-based) of each of the given reference lesions: the connected groups of the
    graph in which two lesions are joined when their dilations overlap or touch, numbered in the order of
    each group's first lesion."""
    n = len(lesions)
    reach = 2 * dilation_mm + math.sqrt(sum(s * s for s in ref.spacing))   # beyond it dilations never touch
    ia, ib = box_pairs(ref.lo[lesions], ref.hi[lesions], ref.lo[lesions], ref.hi[lesions], ref.spacing,
                       within_mm=reach)
    ia, ib = ia[ia < ib], ib[ia < ib]
    closest = pair_min_distances(ref, ref, lesions[ia], lesions[ib])
    joined = surface.within(closest, dilation_mm)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for p in np.flatnonzero(~joined & surface.within(closest, reach)):
        joined[p] = _dilations_touch(ref, int(lesions[ia[p]]), int(lesions[ib[p]]), dilation_mm, cache)
    graph = coo_matrix((np.ones(int(joined.sum())), (ia[joined], ib[joined])), shape=(n, n))
    group = connected_components(graph, directed=False)[1]
    _, first = np.unique(group, return_index=True)     # renumber in the order of each group's first member
    return np.argsort(np.argsort(first))[group] if n else group


def find_hits(ref: Parts, pred: Parts, lesions: np.ndarray, dilation_mm: float,
              overlaps: dict[tuple[int, int], int], nearest: Nearest | None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (t, j) where predicted component j shares a voxel with the dilation of lesion
    ``lesions[t]``: j overlaps the lesion, or their borders lie within r.

    Candidates are the pairs whose boxes lie within r. With ``nearest``, the border distance is settled
    without new queries for most of them: a prediction border point of j whose nearest reference border
    point lies in the lesion within r proves the hit, and a component none of whose border points has any
    reference border point within r is a hit for no lesion. The remaining pairs are queried
    (``pair_min_distances``).
    """
    t, j = box_pairs(ref.lo[lesions], ref.hi[lesions], pred.lo, pred.hi, ref.spacing, within_mm=dilation_mm)
    hit = np.array([pair in overlaps for pair in zip(lesions[t].tolist(), j.tolist())], bool)
    undecided = ~hit
    if nearest is not None and undecided.any() and len(pred.points):
        close = surface.within(nearest.pred_to_ref, dilation_mm)
        close_pairs = np.unique(pred.owner[close] * ref.n + nearest.pred_nearest_owner[close])
        proven = undecided & isin_sorted(j * ref.n + lesions[t], close_pairs)
        has_close_point = np.zeros(pred.n, bool)
        has_close_point[pred.owner[close]] = True
        hit |= proven
        undecided &= ~proven & has_close_point[j]
    ask = np.flatnonzero(undecided)
    hit[ask] = surface.within(pair_min_distances(ref, pred, lesions[t[ask]], j[ask]), dilation_mm)
    return t[hit], j[hit]


def _dilation(ref: Parts, k: int, radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxed dilation of lesion index k: every voxel within <= r mm of it (distance transform on the box
    grown by ceil(r / s_i) voxels per axis, clipped to the image); returns (mask, box start)."""
    spacing = np.asarray(ref.spacing, float)
    grow = np.ceil(radius_mm / spacing).astype(np.int64)
    lo = np.maximum(ref.lo[k] - grow, 0)
    hi = np.minimum(ref.hi[k] + grow, np.asarray(ref.shape))
    canvas = np.zeros(tuple(hi - lo), bool)
    canvas[tuple(slice(int(x), int(y)) for x, y in zip(ref.lo[k] - lo, ref.hi[k] - lo))] = ref.masks[k]
    if radius_mm > 0:
        canvas = surface.within(ndimage.distance_transform_edt(~canvas, sampling=spacing), radius_mm)
    return canvas, lo


def dilate(ref: Parts, k: int, radius_mm: float) -> np.ndarray:
    """Full-image bool mask of the dilation of lesion index k (for tests and figures)."""
    m, lo = _dilation(ref, k, radius_mm)
    out = np.zeros(ref.shape, bool)
    out[tuple(slice(int(a), int(a) + s) for a, s in zip(lo, m.shape))] = m
    return out


def _dilations_touch(ref: Parts, i: int, j: int, radius_mm: float, cache: dict) -> bool:
    """Whether the dilations of lesions i and j overlap or touch (full connectivity); ``cache`` keeps the
    boxed dilations already computed."""
    for k in (i, j):
        if k not in cache:
            cache[k] = _dilation(ref, k, radius_mm)
    (mi, loi), (mj, loj) = cache[i], cache[j]
    grown = ndimage.binary_dilation(np.pad(mi, 1), structure=np.ones((3,) * mi.ndim, bool))
    va, vb = overlap_views(grown, loi - 1, mj, loj)
    return bool((va & vb).any())
