"""Lesion-wise evaluation with the BraTS 2023 rules, on per-lesion crops (DESIGN section 3).

Definitions (``ref`` and ``pred`` are ``parts.Parts``: components of the reference and of the prediction,
both already restricted by the ignore mask and the prediction already postprocessed):

* Dilation: each reference lesion L is dilated by a physical radius r (mm): ``D(L)`` holds every voxel
  whose centre lies within Euclidean distance <= r (spacing-aware) of a voxel centre of L.
* Merging: lesions whose dilations overlap or touch (full connectivity) are merged; a merged lesion is one
  connected region of the union of all dilations and holds one or more reference lesions.
* Hits: a predicted component sharing at least one voxel with the dilation of a merged lesion is a hit for
  it; a merged lesion may have several hits, and a component overlapping the dilations of two merged
  lesions is a hit for both.
* Scores of a merged lesion: the union of its reference lesions against the union of its hits, with every
  metric of ``scores`` (computed on the components' crops and border points). No hit: missed, Dice = IoU
  = F1 = NSD = 0, distances = penalty.
* False positives: predicted components that are a hit for no merged lesion; each is a false-positive
  lesion with Dice = IoU = F1 = NSD = 0 and distances = penalty.

Implementation: "P shares a voxel with D(L)" is "P overlaps L, or the smallest distance between the
border voxels of P and of L is <= r" (the closest voxels of two disjoint sets are border voxels of both),
so hits need no dilated masks. Dilated masks (Euclidean distance transform on the lesion box grown by r)
are only computed to settle whether two lesions whose borders lie between r and 2r + one voxel diagonal
apart have touching dilations: closer pairs always merge, farther pairs never do. Nearest-border queries
of many pairs run as one exact k-d tree query, each pair's points carrying its pair number as an extra
coordinate spaced far beyond the image size, so a point only ever finds points of its own pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import surface
from .parts import Parts, make_tree
from .scores import Scores, grouped_scores

def box_gaps(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray, spacing) -> np.ndarray:
    """Smallest distance (mm) between voxel centres of half-open boxes (broadcast over leading axes)."""
    gap = np.maximum(0, np.maximum(lo_b - (hi_a - 1), lo_a - (hi_b - 1))) * np.asarray(spacing, float)
    return np.sqrt((gap * gap).sum(axis=-1))


_PAIRS_PER_CHUNK = 2_000_000


def _pair_test(lo_a, hi_a, lo_b, hi_b, spacing, within_mm) -> np.ndarray:
    if within_mm is None:
        return np.all((lo_a < hi_b) & (lo_b < hi_a), axis=-1)
    return box_gaps(lo_a, hi_a, lo_b, hi_b, spacing) <= within_mm * (1 + 1e-9)


def box_pairs(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray,
              spacing=None, within_mm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) whose boxes ``lo_a[i]..hi_a[i]`` and ``lo_b[j]..hi_b[j]`` (half-open) intersect,
    or, with ``within_mm``, whose voxel centres may lie within that distance (``box_gaps <= within_mm``).

    Sweep along axis 0: the boxes of ``b`` sorted by their start, each box of ``a`` is only tested
    against those starting within reach (the few boxes of ``b`` much longer than the others are tested
    against every box of ``a``), so many small components cost about linear time.
    """
    ia, ib = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    if len(lo_a) == 0 or len(lo_b) == 0:
        return ia[0], ib[0]
    if len(lo_a) * len(lo_b) <= _PAIRS_PER_CHUNK // 32:   # few boxes: test all pairs at once
        a, b = np.nonzero(_pair_test(lo_a[:, None], hi_a[:, None], lo_b[None], hi_b[None], spacing, within_mm))
        return a.astype(np.int64), b.astype(np.int64)
    margin = 0 if within_mm is None else int(math.floor(within_mm * (1 + 1e-9) / float(spacing[0]))) + 1
    extent = hi_b[:, 0] - lo_b[:, 0]
    long = extent > max(16, 4 * int(np.median(extent)))
    for j in np.flatnonzero(long):              # long boxes: tested against everything
        ok = np.flatnonzero(_pair_test(lo_a, hi_a, lo_b[j], hi_b[j], spacing, within_mm))
        ia.append(ok)
        ib.append(np.full(len(ok), j, np.int64))
    short = np.flatnonzero(~long)
    if len(short):
        order = short[np.argsort(lo_b[short, 0], kind="stable")]
        starts = lo_b[order, 0]
        reach = int(extent[short].max()) + margin
        left = np.searchsorted(starts, lo_a[:, 0] - reach, side="left")
        right = np.searchsorted(starts, hi_a[:, 0] + margin, side="left")
        counts = right - left
        a_all = np.arange(len(lo_a))
        cum = np.cumsum(counts)
        bounds = [0]
        while bounds[-1] < len(lo_a):                 # chunks of about _PAIRS_PER_CHUNK candidates
            done = cum[bounds[-1] - 1] if bounds[-1] else 0
            bounds.append(max(int(np.searchsorted(cum, done + _PAIRS_PER_CHUNK, side="right")), bounds[-1] + 1))
        for s, e in zip(bounds[:-1], bounds[1:]):
            c = counts[s:e]
            if c.sum() == 0:
                continue
            a = np.repeat(a_all[s:e], c)
            first = np.repeat(left[s:e] - np.concatenate(([0], np.cumsum(c)[:-1])), c)
            b = order[np.arange(int(c.sum())) + first]
            ok = _pair_test(lo_a[a], hi_a[a], lo_b[b], hi_b[b], spacing, within_mm)
            ia.append(a[ok])
            ib.append(b[ok])
    return np.concatenate(ia), np.concatenate(ib)


def _views(mask_a, lo_a, mask_b, lo_b):
    """The parts of two boxed masks over the intersection of their boxes."""
    hi_a = lo_a + np.asarray(mask_a.shape)
    hi_b = lo_b + np.asarray(mask_b.shape)
    lo = np.maximum(lo_a, lo_b)
    hi = np.maximum(np.minimum(hi_a, hi_b), lo)   # an empty intersection gives empty views
    sa = tuple(slice(int(x), int(y)) for x, y in zip(lo - lo_a, hi - lo_a))
    sb = tuple(slice(int(x), int(y)) for x, y in zip(lo - lo_b, hi - lo_b))
    return mask_a[sa], mask_b[sb]


def overlap_counts(a: Parts, b: Parts) -> dict[tuple[int, int], int]:
    """Shared voxel count of every pair (component i of ``a``, component j of ``b``) that share any voxel."""
    out = {}
    for i, j in zip(*box_pairs(a.lo, a.hi, b.lo, b.hi)):
        va, vb = _views(a.masks[i], a.lo[i], b.masks[j], b.lo[j])
        c = int(np.count_nonzero(va & vb))
        if c:
            out[(int(i), int(j))] = c
    return out


def _tag_spacing(parts: Parts) -> float:
    """Distance between pair coordinates: beyond twice the image diagonal, so no cross-pair neighbour can
    beat a same-pair one."""
    return 4.0 * surface.default_penalty(parts.shape, parts.spacing) + 1.0


def tagged_nearest(tree_points: np.ndarray, tree_tags: np.ndarray, query_points: np.ndarray,
                   query_tags: np.ndarray, tag_spacing: float) -> np.ndarray:
    """For each query point, the distance to the nearest tree point carrying the same tag (every query tag
    must occur among the tree tags). Exact: the tag coordinate differs by 0 within a tag and by at least
    ``tag_spacing`` across tags."""
    if len(query_points) == 0:
        return np.zeros(0)
    tree = make_tree(np.column_stack([tree_points, tree_tags * tag_spacing]))
    d, _ = tree.query(np.column_stack([query_points, query_tags * tag_spacing]), k=1)
    return np.asarray(d, float)


def pair_min_distances(a: Parts, b: Parts, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """For each pair (component ia[p] of ``a``, component ib[p] of ``b``), the smallest distance (mm) between
    their border points (inf when either has none)."""
    out = np.full(len(ia), np.inf)
    if len(ia) == 0:
        return out
    tree_idx = np.unique(ia)
    tpts, twhich = a.points_of(tree_idx)
    qpts, qwhich = b.points_of(ib)
    if len(tpts) == 0 or len(qpts) == 0:
        return out
    pos = np.searchsorted(tree_idx, ia)           # tag of pair p = its a-component's position in tree_idx
    d = tagged_nearest(tpts, twhich, qpts, pos[qwhich], _tag_spacing(a))
    has = np.bincount(qwhich, minlength=len(ia)) > 0
    np.minimum.at(out, qwhich, d)
    out[~has] = np.inf
    return out


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
    for k in (i, j):
        if k not in cache:
            cache[k] = _dilation(ref, k, radius_mm)
    (mi, loi), (mj, loj) = cache[i], cache[j]
    grown = ndimage.binary_dilation(np.pad(mi, 1), structure=np.ones((3,) * mi.ndim, bool))
    va, vb = _views(grown, loi - 1, mj, loj)
    return bool((va & vb).any())


@dataclass
class Matching:
    """Merged lesions and hits. ``lesions``: 0-based indices of the evaluated (non-empty) reference
    lesions; ``group[t]``: merged-lesion number of ``lesions[t]`` (0-based, in the order of each merged
    lesion's first member); ``members[g]`` / ``hits[g]``: reference
    lesions and predicted components (0-based) of merged lesion g."""

    lesions: list[int]
    group: list[int]
    members: list[list[int]]
    hits: list[list[int]]


def match(ref: Parts, pred: Parts, dilation_mm: float, overlaps: dict, nearest: "Nearest | None" = None
          ) -> Matching:
    """Merged lesions and their hits (module docstring). ``nearest`` (``nearest_borders``) settles most
    non-overlapping candidate pairs without new queries: a prediction border point whose nearest reference
    border point lies in lesion i within r makes a hit for i, and a component none of whose points has any
    reference border within r is a hit for no lesion."""
    if not (dilation_mm >= 0 and math.isfinite(dilation_mm)):
        raise ValueError(f"lesion dilation radius must be a finite number >= 0 mm, got {dilation_mm!r}")
    spacing = ref.spacing
    lesions = np.flatnonzero(ref.voxels > 0)
    lo, hi = ref.lo[lesions], ref.hi[lesions]
    n = len(lesions)

    # merging: pairs whose borders are within r always merge; beyond 2r + a voxel diagonal never
    reach = 2 * dilation_mm + math.sqrt(sum(s * s for s in spacing))
    ia, ib = box_pairs(lo, hi, lo, hi, spacing, within_mm=reach)
    keep = ia < ib
    ia, ib = ia[keep], ib[keep]
    closest = pair_min_distances(ref, ref, lesions[ia], lesions[ib])
    joined = surface.within(closest, dilation_mm)
    cache: dict = {}
    for p in np.flatnonzero(~joined & surface.within(closest, reach)):
        joined[p] = _dilations_touch(ref, int(lesions[ia[p]]), int(lesions[ib[p]]), dilation_mm, cache)
    graph = coo_matrix((np.ones(int(joined.sum())), (ia[joined], ib[joined])), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    # number merged lesions in the order of their first member (the id written in per_lesion.csv)
    _, first = np.unique(group, return_index=True)
    group = np.argsort(np.argsort(first))[group] if n else group
    n_groups = int(group.max()) + 1 if n else 0
    members: list[list[int]] = [[] for _ in range(n_groups)]
    for t, g in enumerate(group):
        members[g].append(int(lesions[t]))

    # hits: overlap, or border distance <= r
    hit_sets: list[set] = [set() for _ in range(n_groups)]
    ia, jb = box_pairs(lo, hi, pred.lo, pred.hi, spacing, within_mm=dilation_mm)
    touching = np.array([overlaps.get((int(lesions[a]), int(j)), 0) > 0 for a, j in zip(ia, jb)], bool)
    near = np.zeros(len(ia), bool)
    rest = ~touching
    if nearest is not None and rest.any() and len(pred.points):
        close = surface.within(nearest.pred_to_ref, dilation_mm)
        keys = np.unique(pred.owner[close] * ref.n + nearest.pred_nearest_owner[close])
        pair_keys = jb * ref.n + lesions[ia]
        near = rest & _isin_sorted(pair_keys, keys)
        any_close = np.zeros(pred.n, bool)
        any_close[pred.owner[close]] = True
        rest = rest & ~near & any_close[jb]
    rest = np.flatnonzero(rest)
    near[rest] = surface.within(pair_min_distances(ref, pred, lesions[ia[rest]], jb[rest]), dilation_mm)
    for a, j in zip(ia[touching | near], jb[touching | near]):
        hit_sets[group[a]].add(int(j))
    return Matching(lesions=[int(k) for k in lesions], group=[int(g) for g in group], members=members,
                    hits=[sorted(h) for h in hit_sets])


@dataclass
class LesionScores:
    """One lesion-wise result. ``kind`` is ``reference`` or ``false_positive``; ``index`` is the 0-based
    component index in its parts (a reference lesion's id is index + 1); ``group`` numbers the merged lesion
    of a reference lesion (-1 for false positives); ``hit_components`` are the 0-based predicted components
    matched to that merged lesion."""

    kind: str
    index: int
    group: int
    detected: bool
    scores: Scores
    hit_components: tuple[int, ...] = ()


@dataclass
class Nearest:
    """Directed border distances between two whole masks: for every border point of ``pred`` the distance
    to the nearest border point of ``ref`` and the reference component it belongs to, and the reverse."""

    pred_to_ref: np.ndarray
    pred_nearest_owner: np.ndarray
    ref_to_pred: np.ndarray
    ref_nearest_owner: np.ndarray


def nearest_borders(ref: Parts, pred: Parts) -> Nearest:
    """Exact nearest-border distances between all of ``ref`` and all of ``pred`` (both with border points):
    one k-d tree query per direction."""
    d_pr, i_pr = ref.tree().query(pred.points, k=1)
    d_rp, i_rp = pred.tree().query(ref.points, k=1)
    return Nearest(np.asarray(d_pr, float), ref.owner[i_pr], np.asarray(d_rp, float), pred.owner[i_rp])


def evaluate_lesions(ref: Parts, pred: Parts, *, dilation_mm: float, tolerance_mm: float, penalty_mm: float,
                     overlaps: dict[tuple[int, int], int] | None = None,
                     nearest: Nearest | None = None) -> list[LesionScores]:
    """Lesion-wise results: one per non-empty reference lesion (in lesion order), then one per
    false-positive component (in prediction component order). See the module docstring for the rules.

    ``overlaps`` (``overlap_counts``) and ``nearest`` (``nearest_borders``) may be passed to reuse the
    case-level computations: a border point whose nearest point over the whole other mask lies in its own
    merged lesion (in the hits of it) already has its lesion-wise distance; only the other points are
    queried again, restricted to their merged lesion.
    """
    if overlaps is None:
        overlaps = overlap_counts(ref, pred)
    if nearest is None and len(ref.points) and len(pred.points):
        nearest = nearest_borders(ref, pred)
    m = match(ref, pred, dilation_mm, overlaps, nearest)
    with_hits = [g for g, h in enumerate(m.hits) if h]
    group_scores: dict[int, Scores] = {g: Scores.worst(penalty_mm) for g, h in enumerate(m.hits) if not h}
    if with_hits:
        tag = _tag_spacing(ref)
        pos = {g: t for t, g in enumerate(with_hits)}
        mem_g, mem_i = np.array([(pos[g], i) for g in with_hits for i in m.members[g]], np.int64).T
        hit_g, hit_j = np.array([(pos[g], j) for g in with_hits for j in m.hits[g]], np.int64).T
        n_g = len(with_hits)
        # prediction side: points of each (merged lesion, hit) pair
        pred_src, pred_which = _sources(pred, hit_j)
        pg = hit_g[pred_which]
        group_of_lesion = np.full(ref.n, -1, np.int64)
        group_of_lesion[mem_i] = mem_g
        d_pr = nearest.pred_to_ref[pred_src].copy()
        redo = group_of_lesion[nearest.pred_nearest_owner[pred_src]] != pg
        # reference side: points of each member lesion
        ref_src, ref_which = _sources(ref, mem_i)
        rg = mem_g[ref_which]
        hit_keys = np.sort(hit_g * pred.n + hit_j)
        d_rp = nearest.ref_to_pred[ref_src].copy()
        redo_r = ~_isin_sorted(rg * pred.n + nearest.ref_nearest_owner[ref_src], hit_keys)
        if redo.any():
            d_pr[redo] = tagged_nearest(ref.points[ref_src], rg, pred.points[pred_src[redo]], pg[redo], tag)
        if redo_r.any():
            d_rp[redo_r] = tagged_nearest(pred.points[pred_src], pg, ref.points[ref_src[redo_r]], rg[redo_r], tag)
        n_ref = np.bincount(mem_g, weights=ref.voxels[mem_i], minlength=n_g)
        n_pred = np.bincount(hit_g, weights=pred.voxels[hit_j], minlength=n_g)
        by_ref: dict[int, dict[int, int]] = {}
        for (i, j), c in overlaps.items():
            by_ref.setdefault(i, {})[j] = c
        n_inter = np.zeros(n_g)
        for g in with_hits:
            hs = set(m.hits[g])
            n_inter[pos[g]] = sum(c for i in m.members[g] for j, c in by_ref.get(i, {}).items() if j in hs)
        scored = grouped_scores(n_ref.astype(np.int64), n_pred.astype(np.int64), n_inter.astype(np.int64),
                                d_pr, pg, d_rp, rg, tolerance_mm)
        for g in with_hits:
            group_scores[g] = scored[pos[g]]
    out = [LesionScores("reference", k, m.group[t], bool(m.hits[m.group[t]]), group_scores[m.group[t]],
                        tuple(m.hits[m.group[t]])) for t, k in enumerate(m.lesions)]
    matched = set().union(*m.hits) if m.hits else set()
    out += [LesionScores("false_positive", j, -1, False, Scores.worst(penalty_mm))
            for j in range(pred.n) if j not in matched]
    return out


def _sources(parts: Parts, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``parts.points`` of the border points of the given components (in order, repeats
    allowed), and for each the position in ``indices`` it comes from."""
    s = parts.starts
    counts = s[indices + 1] - s[indices]
    which = np.repeat(np.arange(len(indices)), counts)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.arange(int(counts.sum())) + np.repeat(s[indices] - first, counts), which


def _isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values
