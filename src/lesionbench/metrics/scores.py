"""All metrics of one reference/prediction pair, with the empty-mask rules (DESIGN section 3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import overlap, surface

METRICS = ("dice", "iou", "hd95", "asd", "contour_f1", "nsd")


@dataclass(frozen=True)
class Scores:
    """Dice, IoU, HD95 (mm), ASD (mm), contour F1 and NSD at the tolerance, never NaN."""

    dice: float
    iou: float
    hd95: float
    asd: float
    contour_f1: float
    nsd: float

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def perfect() -> "Scores":
        """Both masks empty: Dice = IoU = F1 = NSD = 1, distances 0."""
        return Scores(1.0, 1.0, 0.0, 0.0, 1.0, 1.0)

    @staticmethod
    def worst(penalty_mm: float) -> "Scores":
        """Exactly one mask empty (or a missed / false-positive lesion): Dice = IoU = F1 = NSD = 0,
        distances = the penalty."""
        return Scores(0.0, 0.0, float(penalty_mm), float(penalty_mm), 0.0, 0.0)


def score(n_ref: int, n_pred: int, n_inter: int, ref_points: np.ndarray, pred_points: np.ndarray,
          tolerance_mm: float, penalty_mm: float) -> Scores:
    """Every metric of a pair given its voxel counts and border points.

    Args:
      n_ref, n_pred, n_inter: |R|, |P| and |P & R| in voxels.
      ref_points, pred_points: border voxel centres in mm, (b, ndim) (``surface.border_points``).
      tolerance_mm: tau of contour F1 and NSD (distance <= tau counts).
      penalty_mm: distance reported when exactly one mask is empty.

    Returns:
      ``Scores.perfect()`` if both masks are empty, ``Scores.worst(penalty_mm)`` if exactly one is, else the
      definitions of ``overlap`` and ``surface``.
    """
    if n_ref == 0 and n_pred == 0:
        return Scores.perfect()
    if n_ref == 0 or n_pred == 0:
        return Scores.worst(penalty_mm)
    return from_distances(n_ref, n_pred, n_inter, surface.directed_distances(pred_points, ref_points),
                          surface.directed_distances(ref_points, pred_points), tolerance_mm)


def from_distances(n_ref: int, n_pred: int, n_inter: int, d_pred_to_ref: np.ndarray, d_ref_to_pred: np.ndarray,
                   tolerance_mm: float) -> Scores:
    """Every metric of a pair of non-empty masks from its voxel counts and directed border distances
    (``d_pred_to_ref``: one entry per prediction border voxel; ``d_ref_to_pred``: per reference border voxel).
    """
    return Scores(
        dice=overlap.dice(n_ref, n_pred, n_inter),
        iou=overlap.iou(n_ref, n_pred, n_inter),
        hd95=surface.hd95(d_pred_to_ref, d_ref_to_pred),
        asd=surface.asd(d_pred_to_ref, d_ref_to_pred),
        contour_f1=surface.contour_f1(d_pred_to_ref, d_ref_to_pred, tolerance_mm),
        nsd=surface.nsd(d_pred_to_ref, d_ref_to_pred, tolerance_mm),
    )


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


def grouped_scores(n_ref: np.ndarray, n_pred: np.ndarray, n_inter: np.ndarray, d_pred_to_ref: np.ndarray,
                   g_pred: np.ndarray, d_ref_to_pred: np.ndarray, g_ref: np.ndarray,
                   tolerance_mm: float) -> list[Scores]:
    """``from_distances`` for many pairs at once: pair g has counts ``n_ref[g]``, ``n_pred[g]``,
    ``n_inter[g]`` and the directed distances whose entry in ``g_pred`` / ``g_ref`` is g. Every pair must
    have non-empty masks (so at least one distance in each direction)."""
    n = len(n_ref)
    cp = np.bincount(g_pred, minlength=n).astype(float)
    cr = np.bincount(g_ref, minlength=n).astype(float)
    sp = np.bincount(g_pred, weights=d_pred_to_ref, minlength=n)
    sr = np.bincount(g_ref, weights=d_ref_to_pred, minlength=n)
    wp = np.bincount(g_pred[surface.within(d_pred_to_ref, tolerance_mm)], minlength=n).astype(float)
    wr = np.bincount(g_ref[surface.within(d_ref_to_pred, tolerance_mm)], minlength=n).astype(float)
    hd = np.maximum(segment_percentile(d_pred_to_ref, g_pred, n, 95), segment_percentile(d_ref_to_pred, g_ref, n, 95))
    out = []
    for g in range(n):
        precision, recall = wp[g] / cp[g], wr[g] / cr[g]
        out.append(Scores(
            dice=overlap.dice(int(n_ref[g]), int(n_pred[g]), int(n_inter[g])),
            iou=overlap.iou(int(n_ref[g]), int(n_pred[g]), int(n_inter[g])),
            hd95=float(hd[g]),
            asd=float((sp[g] + sr[g]) / (cp[g] + cr[g])),
            contour_f1=0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall)),
            nsd=float((wp[g] + wr[g]) / (cp[g] + cr[g]))))
    return out
