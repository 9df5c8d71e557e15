"""One case, end to end: ignore mask, postprocessing, case-level and lesion-wise metrics.

Order of operations (docs/metrics.md), identical for every model:

1. Reference lesions are the connected components of the stored reference mask (full connectivity),
   numbered like ``label_components`` and ``lesions.csv``; a reference row reports the stored lesion's
   ``voxels`` and ``size_fraction`` (so it joins ``lesions.csv`` exactly).
2. Ignore mask: its voxels are removed from the reference and from the prediction before anything else.
   A lesion keeps its number; a lesion lying entirely under the ignore mask is not evaluated (no row).
3. Prediction: ``postprocess`` (threshold ``>=``, then removal of components with fewer than
   ``min_component_voxels`` voxels) of the prediction with the ignore voxels removed. Predictions written
   by inference were postprocessed already; applying it again changes nothing (it is idempotent) and gives
   predictions from any other tool exactly the same treatment.
4. Case-level metrics between the two resulting masks, then the lesion-wise results
   (``lesionwise.evaluate_lesions``), both from one set of nearest-border queries. With the ``surfel``
   surface definition the boundary metrics are measured between surfels (``surfels.surfel_parts``, one
   more set of queries); matching stays on the border voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..postprocess import binarize
from . import surface
from .boxes import shared_voxel_counts
from .lesionwise import LesionScores, evaluate_lesions
from .nearest import Nearest, nearest_borders
from .parts import Parts, find_parts
from .scores import Scores, empty_mask_scores, from_distances
from .surfels import surfel_parts

CASE_COLUMNS = [
    "ref_empty",
    "pred_empty",
    "ref_voxels",
    "pred_voxels",
    "dice",
    "iou",
    "hd95",
    "asd",
    "contour_f1",
    "nsd",
    "n_ref_lesions",
    "n_hit_lesions",
    "n_fp_lesions",
]
LESION_COLUMNS = [
    "kind",
    "lesion_id",
    "merged_lesion_id",
    "voxels",
    "size_fraction",
    "detected",
    "dice",
    "iou",
    "hd95",
    "asd",
    "contour_f1",
    "nsd",
]


@dataclass
class CaseEvaluation:
    """Case-level scores and lesion-wise results of one case (``evaluate_case``).

    ``lesions`` holds one entry per evaluated reference lesion (lesion order), then one per false-positive
    component; ``lesion_voxels`` / ``lesion_fractions`` describe the stored reference lesions (index = id - 1),
    ``fp_voxels`` / ``fp_fractions`` the false-positive components (in row order).
    """

    ref_voxels: int
    pred_voxels: int
    scores: Scores
    lesions: list[LesionScores]
    lesion_voxels: np.ndarray
    lesion_fractions: np.ndarray
    fp_voxels: np.ndarray
    fp_fractions: np.ndarray
    penalty_mm: float

    @property
    def ref_empty(self) -> bool:
        return self.ref_voxels == 0

    @property
    def pred_empty(self) -> bool:
        return self.pred_voxels == 0

    def case_row(self) -> dict:
        """The per_case.csv columns after ``case_id`` (docs/contracts.md)."""
        refs = [r for r in self.lesions if r.kind == "reference"]
        return {
            "ref_empty": self.ref_empty,
            "pred_empty": self.pred_empty,
            "ref_voxels": int(self.ref_voxels),
            "pred_voxels": int(self.pred_voxels),
            **self.scores.as_dict(),
            "n_ref_lesions": len(refs),
            "n_hit_lesions": sum(r.detected for r in refs),
            "n_fp_lesions": len(self.lesions) - len(refs),
        }

    def lesion_rows(self) -> list[dict]:
        """The per_lesion.csv columns after ``case_id``: reference lesions by id, then false positives
        numbered 1..m in prediction component order. ``merged_lesion_id`` numbers the merged (dilated) lesion
        of a reference row 1..g per case, in the order of each merged lesion's smallest lesion id (the
        BraTS counting unit); false-positive rows belong to no merged lesion and carry 0."""
        rows = []
        fp = 0
        for r in self.lesions:
            if r.kind == "reference":
                ident, vox, frac = r.index + 1, self.lesion_voxels[r.index], self.lesion_fractions[r.index]
            else:
                ident, vox, frac = fp + 1, self.fp_voxels[fp], self.fp_fractions[fp]
                fp += 1
            rows.append(
                {
                    "kind": r.kind,
                    "lesion_id": int(ident),
                    "merged_lesion_id": int(r.group) + 1,
                    "voxels": int(vox),
                    "size_fraction": float(frac),
                    "detected": bool(r.detected),
                    **r.scores.as_dict(),
                }
            )
        return rows


def case_scores(
    ref: Parts,
    pred: Parts,
    *,
    tolerance_mm: float,
    penalty_mm: float,
    overlaps: dict,
    nearest: Nearest | None,
) -> Scores:
    """Case-level metrics between the union of ``ref`` and the union of ``pred`` components, with the
    empty-mask rules (``overlaps``: their ``boxes.shared_voxel_counts``; ``nearest``: their
    ``nearest.nearest_borders``, None when either side has no border). The boundary metrics use the parts'
    points (border voxels, or surfels weighted by ``weights``)."""
    n_ref, n_pred = int(ref.voxels.sum()), int(pred.voxels.sum())
    empty = empty_mask_scores(n_ref, n_pred, penalty_mm)
    if empty is not None:
        return empty
    assert nearest is not None  # both masks non-empty: border points on both sides
    return from_distances(
        n_ref,
        n_pred,
        int(sum(overlaps.values())),
        nearest.pred_to_ref,
        nearest.ref_to_pred,
        tolerance_mm,
        pred.weights,
        ref.weights,
    )


def _surfaces(ref: Parts, pred: Parts, nearest: Nearest | None, definition: str):
    """The parts whose points the boundary metrics use, and their nearest-border distances: ``ref``,
    ``pred`` and ``nearest`` themselves for border voxels, their surfels (queried anew) for ``surfel``."""
    if surface.check_surface_definition(definition) == "voxel":
        return ref, pred, nearest
    ref_s, pred_s = surfel_parts(ref), surfel_parts(pred)
    return ref_s, pred_s, nearest_borders(ref_s, pred_s) if len(ref_s.points) and len(pred_s.points) else None


def _check(tolerance_mm, penalty_mm, shape, spacing) -> float:
    """Checks tau; returns the penalty (the image extent diagonal when None)."""
    surface.check_tolerance(tolerance_mm)
    if penalty_mm is None:
        return surface.default_penalty(shape, spacing)
    return surface.check_mm(penalty_mm, "distance penalty")


def evaluate_case(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing,
    *,
    tolerance_mm: float,
    dilation_mm: float,
    ignore: np.ndarray | None = None,
    penalty_mm: float | None = None,
    threshold: float = 0.5,
    min_component_voxels: int = 0,
    surface_definition: str = "voxel",
) -> CaseEvaluation:
    """Evaluate one case (the module docstring gives the order of operations).

    Args:
      reference: stored reference mask (2D/3D, non-zero = lesion).
      prediction: binary mask or probability map of the same shape.
      spacing: mm per axis, in array order.
      tolerance_mm: tau of contour F1 and NSD.
      dilation_mm: lesion dilation radius r of the lesion-wise matching.
      ignore: optional mask of voxels excluded from every metric (non-zero = excluded).
      penalty_mm: distance for an empty side; None = image extent diagonal (``surface.default_penalty``).
      threshold, min_component_voxels: the ``postprocess`` parameters.
      surface_definition: ``voxel`` (border voxel centres) or ``surfel`` (area-weighted surface elements)
        for HD95, ASD, contour F1 and NSD (``surface.SURFACE_DEFINITIONS``).
    """
    reference = np.asarray(reference)
    prediction = np.asarray(prediction)
    if reference.shape != prediction.shape:
        raise ValueError(f"prediction shape {prediction.shape} != reference shape {reference.shape}")
    penalty_mm = _check(tolerance_mm, penalty_mm, reference.shape, spacing)
    stored = find_parts(reference, spacing)
    ref = stored.restrict(ignore)
    pred = find_parts(binarize(prediction, threshold), spacing, exclude=ignore, min_voxels=int(min_component_voxels))
    overlaps = shared_voxel_counts(ref, pred)
    nearest = nearest_borders(ref, pred) if len(ref.points) and len(pred.points) else None
    surfaces = _surfaces(ref, pred, nearest, surface_definition)
    scores = case_scores(
        surfaces[0],
        surfaces[1],
        tolerance_mm=tolerance_mm,
        penalty_mm=penalty_mm,
        overlaps=overlaps,
        nearest=surfaces[2],
    )
    lesions = evaluate_lesions(
        ref,
        pred,
        dilation_mm=dilation_mm,
        tolerance_mm=tolerance_mm,
        penalty_mm=penalty_mm,
        overlaps=overlaps,
        nearest=nearest,
        surfaces=surfaces,
    )
    fp = np.array([r.index for r in lesions if r.kind == "false_positive"], np.int64)
    return CaseEvaluation(
        ref_voxels=int(ref.voxels.sum()),
        pred_voxels=int(pred.voxels.sum()),
        scores=scores,
        lesions=lesions,
        lesion_voxels=stored.voxels,
        lesion_fractions=stored.size_fractions(),
        fp_voxels=pred.voxels[fp],
        fp_fractions=pred.size_fractions(fp),
        penalty_mm=penalty_mm,
    )


def case_metrics(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing,
    *,
    tolerance_mm: float,
    ignore: np.ndarray | None = None,
    penalty_mm: float | None = None,
    surface_definition: str = "voxel",
) -> Scores:
    """Case-level metrics of two binary masks (no postprocessing): Dice, IoU, HD95, ASD, contour F1, NSD.

    The ignore voxels are removed from both masks first; empty masks follow ``Scores.perfect`` /
    ``Scores.worst``; ``surface_definition`` as for ``evaluate_case``.
    """
    reference, prediction = np.asarray(reference), np.asarray(prediction)
    if reference.shape != prediction.shape:
        raise ValueError(f"prediction shape {prediction.shape} != reference shape {reference.shape}")
    penalty_mm = _check(tolerance_mm, penalty_mm, reference.shape, spacing)
    surface.check_surface_definition(surface_definition)
    ref = find_parts(reference, spacing, exclude=ignore)
    pred = find_parts(prediction, spacing, exclude=ignore)
    if surface_definition == "surfel":
        ref, pred = surfel_parts(ref), surfel_parts(pred)
    nearest = nearest_borders(ref, pred) if len(ref.points) and len(pred.points) else None
    return case_scores(
        ref,
        pred,
        tolerance_mm=tolerance_mm,
        penalty_mm=penalty_mm,
        overlaps=shared_voxel_counts(ref, pred),
        nearest=nearest,
    )
