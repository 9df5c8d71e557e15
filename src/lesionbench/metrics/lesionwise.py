"""Lesion-wise scores with the BraTS 2023 rules, on per-lesion crops (docs/metrics.md).

The merged lesions and their hits come from ``matching``. Then:

* Scores of a merged lesion: the union of its reference lesions against the union of its hits, with every
  metric of ``scores`` (computed on the components' crops and border points). No hit: missed, Dice = IoU
  = F1 = NSD = 0, distances = penalty.
* False positives: predicted components that are a hit for no merged lesion; each is a false-positive
  lesion with Dice = IoU = F1 = NSD = 0 and distances = penalty.

The border distances of a merged lesion reuse the case-level nearest-border query (``nearest.Nearest``): a
border point whose nearest point over the whole other mask already lies in its own merged lesion (in its
members, or in its hits) has its lesion-wise distance; only the other points are queried again, restricted
to their merged lesion (``nearest.tagged_nearest``, one query per direction for all merged lesions).

Matching always uses the border voxels (it is about shared voxels); the boundary metrics use the surface
of the evaluation's surface definition: the border voxels, or the surfels (``surfels.surfel_parts``) passed
as ``surfaces``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .indexing import isin_sorted
from .matching import Matching, match
from .nearest import Nearest, tag_spacing, tagged_nearest
from .parts import Parts
from .scores import Scores, grouped_scores


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


def evaluate_lesions(
    ref: Parts,
    pred: Parts,
    *,
    dilation_mm: float,
    tolerance_mm: float,
    penalty_mm: float,
    overlaps: dict[tuple[int, int], int],
    nearest: Nearest | None,
    surfaces: tuple[Parts, Parts, Nearest | None] | None = None,
) -> list[LesionScores]:
    """Lesion-wise results: one per non-empty reference lesion (in lesion order), then one per
    false-positive component (in prediction component order). See the module docstring for the rules.

    ``overlaps`` (``boxes.shared_voxel_counts``) and ``nearest`` (``nearest.nearest_borders``, None when
    either side has no border) are those of the case level, reused here. ``surfaces``: the surfel parts of
    ``ref`` and ``pred`` and their ``nearest_borders``, to measure the boundary metrics on surfels (None:
    on the border voxels).
    """
    m = match(ref, pred, dilation_mm, overlaps, nearest)
    scores = merged_lesion_scores(
        ref, pred, m, overlaps, (ref, pred, nearest) if surfaces is None else surfaces, tolerance_mm, penalty_mm
    )
    out = [
        LesionScores("reference", k, g, bool(m.hits[g]), scores[g], tuple(m.hits[g]))
        for k, g in zip(m.lesions, m.group)
    ]
    matched = set().union(*m.hits)
    worst = Scores.worst(penalty_mm)  # frozen: one instance serves every false positive
    out += [LesionScores("false_positive", j, -1, False, worst) for j in range(pred.n) if j not in matched]
    return out


def merged_lesion_scores(
    ref: Parts,
    pred: Parts,
    m: Matching,
    overlaps: dict[tuple[int, int], int],
    surfaces: tuple[Parts, Parts, Nearest | None],
    tolerance_mm: float,
    penalty_mm: float,
) -> list[Scores]:
    """Scores of each merged lesion g: its members against its hits, or ``Scores.worst`` if it has none.
    ``surfaces``: the parts whose points the boundary metrics use (``ref`` and ``pred`` themselves, or their
    surfels) and their ``nearest_borders``."""
    out = [Scores.worst(penalty_mm)] * len(m.hits)
    scored = [g for g, h in enumerate(m.hits) if h]
    if not scored:
        return out
    ref_surface, pred_surface, nearest = surfaces
    assert nearest is not None  # a hit means surface points on both sides
    # pairs (s, i) of scored merged lesion s (its place in ``scored``) and member lesion i, likewise hits
    member_s, member_i = np.array([(s, i) for s, g in enumerate(scored) for i in m.members[g]], np.int64).T
    hit_s, hit_j = np.array([(s, j) for s, g in enumerate(scored) for j in m.hits[g]], np.int64).T
    n = len(scored)
    n_ref = np.bincount(member_s, weights=ref.voxels[member_i], minlength=n).astype(np.int64)
    n_pred = np.bincount(hit_s, weights=pred.voxels[hit_j], minlength=n).astype(np.int64)
    n_inter = _shared_voxels(ref, pred, member_s, member_i, hit_s, hit_j, overlaps, n)
    d_pr, s_pr, w_pr, d_rp, s_rp, w_rp = _border_distances(
        ref_surface, pred_surface, member_s, member_i, hit_s, hit_j, nearest
    )
    for g, s in zip(scored, grouped_scores(n_ref, n_pred, n_inter, d_pr, s_pr, d_rp, s_rp, tolerance_mm, w_pr, w_rp)):
        out[g] = s
    return out


def _shared_voxels(ref: Parts, pred: Parts, member_s, member_i, hit_s, hit_j, overlaps, n) -> np.ndarray:
    """|members & hits| of each scored merged lesion: the sum of the shared voxel counts of its (member,
    hit) pairs."""
    if not overlaps:
        return np.zeros(n, np.int64)
    merged_of = np.full(ref.n, -1, np.int64)
    merged_of[member_i] = member_s
    (i, j), count = np.array(list(overlaps), np.int64).T, np.array(list(overlaps.values()), np.int64)
    s = merged_of[i]
    inside = (s >= 0) & isin_sorted(s * pred.n + j, np.sort(hit_s * pred.n + hit_j))
    return np.bincount(s[inside], weights=count[inside], minlength=n).astype(np.int64)


def _border_distances(ref: Parts, pred: Parts, member_s, member_i, hit_s, hit_j, nearest: Nearest):
    """Directed surface distances within each scored merged lesion: for every surface point of its hits,
    the distance to the nearest surface point of its members (``d_pr``), and the reverse (``d_rp``), each
    with the merged lesion (``s_pr``, ``s_rp``) and the weight (``w_pr``, ``w_rp``; None for border voxels)
    of every entry."""
    pred_at, which = pred.point_indices(hit_j)
    s_pr = hit_s[which]
    ref_at, which = ref.point_indices(member_i)
    s_rp = member_s[which]
    merged_of = np.full(ref.n, -1, np.int64)
    merged_of[member_i] = member_s
    tags = tag_spacing(ref)

    d_pr = nearest.pred_to_ref[pred_at]
    elsewhere = merged_of[nearest.pred_nearest_owner[pred_at]] != s_pr
    d_pr[elsewhere] = tagged_nearest(ref.points[ref_at], s_rp, pred.points[pred_at[elsewhere]], s_pr[elsewhere], tags)

    d_rp = nearest.ref_to_pred[ref_at]
    own_hits = np.sort(hit_s * pred.n + hit_j)
    elsewhere = ~isin_sorted(s_rp * pred.n + nearest.ref_nearest_owner[ref_at], own_hits)
    d_rp[elsewhere] = tagged_nearest(pred.points[pred_at], s_pr, ref.points[ref_at[elsewhere]], s_rp[elsewhere], tags)
    w_pr = None if pred.weights is None else pred.weights[pred_at]
    w_rp = None if ref.weights is None else ref.weights[ref_at]
    return d_pr, s_pr, w_pr, d_rp, s_rp, w_rp
