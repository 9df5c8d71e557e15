"""All metrics of one reference/prediction pair, with the empty-mask rules (docs/metrics.md)."""

from __future__ import annotations

from dataclasses import dataclass

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
        return {name: getattr(self, name) for name in METRICS}

    @staticmethod
    def perfect() -> Scores:
        """Both masks empty: Dice = IoU = F1 = NSD = 1, distances 0."""
        return Scores(1.0, 1.0, 0.0, 0.0, 1.0, 1.0)

    @staticmethod
    def worst(penalty_mm: float) -> Scores:
        """Exactly one mask empty (or a missed / false-positive lesion): Dice = IoU = F1 = NSD = 0,
        distances = the penalty."""
        return Scores(0.0, 0.0, float(penalty_mm), float(penalty_mm), 0.0, 0.0)


def empty_mask_scores(n_ref: int, n_pred: int, penalty_mm: float) -> Scores | None:
    """The empty-mask rules: ``Scores.perfect()`` if both masks are empty, ``Scores.worst(penalty_mm)`` if
    exactly one is, None if neither is (then the metrics are computed)."""
    if n_ref == 0 and n_pred == 0:
        return Scores.perfect()
    if n_ref == 0 or n_pred == 0:
        return Scores.worst(penalty_mm)
    return None


def score(
    n_ref: int,
    n_pred: int,
    n_inter: int,
    ref_points: np.ndarray,
    pred_points: np.ndarray,
    tolerance_mm: float,
    penalty_mm: float,
) -> Scores:
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
    empty = empty_mask_scores(n_ref, n_pred, penalty_mm)
    if empty is not None:
        return empty
    return from_distances(
        n_ref,
        n_pred,
        n_inter,
        surface.directed_distances(pred_points, ref_points),
        surface.directed_distances(ref_points, pred_points),
        tolerance_mm,
    )


def from_distances(
    n_ref: int,
    n_pred: int,
    n_inter: int,
    d_pred_to_ref: np.ndarray,
    d_ref_to_pred: np.ndarray,
    tolerance_mm: float,
    w_pred: np.ndarray | None = None,
    w_ref: np.ndarray | None = None,
) -> Scores:
    """Every metric of a pair of non-empty masks from its voxel counts and directed surface distances
    (``d_pred_to_ref``: one entry per prediction surface point; ``d_ref_to_pred``: per reference surface
    point), the points weighted by ``w_pred`` / ``w_ref`` (surfel sizes; None for border voxels).
    """
    return _scores(
        [n_ref],
        [n_pred],
        [n_inter],
        surface.summarize(d_pred_to_ref, tolerance_mm, weights=w_pred),
        surface.summarize(d_ref_to_pred, tolerance_mm, weights=w_ref),
    )[0]


def grouped_scores(
    n_ref: np.ndarray,
    n_pred: np.ndarray,
    n_inter: np.ndarray,
    d_pred_to_ref: np.ndarray,
    g_pred: np.ndarray,
    d_ref_to_pred: np.ndarray,
    g_ref: np.ndarray,
    tolerance_mm: float,
    w_pred: np.ndarray | None = None,
    w_ref: np.ndarray | None = None,
) -> list[Scores]:
    """``from_distances`` for many pairs at once: pair g has counts ``n_ref[g]``, ``n_pred[g]``,
    ``n_inter[g]`` and the directed distances (weights) whose entry in ``g_pred`` / ``g_ref`` is g. Every
    pair must have non-empty masks (so at least one distance in each direction)."""
    n = len(n_ref)
    return _scores(
        n_ref,
        n_pred,
        n_inter,
        surface.summarize(d_pred_to_ref, tolerance_mm, g_pred, n, w_pred),
        surface.summarize(d_ref_to_pred, tolerance_mm, g_ref, n, w_ref),
    )


def _scores(n_ref, n_pred, n_inter, p: surface.Directed, r: surface.Directed) -> list[Scores]:
    """``Scores`` of each pair from its voxel counts and the summaries of d(P->R) (``p``) and d(R->P)."""
    columns = [np.asarray(x, np.int64).tolist() for x in (n_ref, n_pred, n_inter)] + [
        np.atleast_1d(f(p, r)).tolist() for f in (surface.hd95, surface.asd, surface.contour_f1, surface.nsd)
    ]
    return [
        Scores(
            dice=overlap.dice(r_vox, p_vox, shared),
            iou=overlap.iou(r_vox, p_vox, shared),
            hd95=hd95,
            asd=asd,
            contour_f1=f1,
            nsd=nsd,
        )
        for r_vox, p_vox, shared, hd95, asd, f1, nsd in zip(*columns)
    ]
