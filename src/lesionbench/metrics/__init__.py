"""Segmentation metrics of the study (docs/metrics.md): one implementation, used for every model.

Module map (each module one job; lower lines use only the ones above them, plus ``indexing``):

- ``indexing``: vectorised index arithmetic (ranges, sorted membership) shared by the others;
- ``overlap``: Dice and IoU from voxel counts;
- ``surface``: border voxels, the surface definitions, and the HD95, ASD, contour F1 and NSD formulas on
  ``Directed`` summaries of distances (one pair or many pairs at once, weighted for surfels);
- ``scores``: every metric of one pair with the empty-mask rules (``Scores``, ``score``);
- ``parts``: connected components as boxed crops and border points (``find_parts``; no full-volume
  labelling; scattered 2D components from the pixel list; masks cut on demand);
- ``surfels``: surface elements on the voxel-corner grid with their lengths / areas (``surfel_parts``);
- ``boxes``: pairs of components whose boxes meet, and their shared voxel counts;
- ``nearest``: nearest border points between components (exact k-d tree queries, many pairs at once);
- ``matching``: BraTS 2023 merged lesions and hits;
- ``lesionwise``: lesion-wise scores of merged lesions and false positives;
- ``case``: one case end to end (``evaluate_case``) and plain two-mask metrics (``case_metrics``).

One case (``case.evaluate_case``), in call order:

1. ``parts.find_parts`` on the reference, ``Parts.restrict`` by the ignore mask, ``find_parts`` on the
   binarized prediction (ignore removed, small components dropped);
2. ``boxes.shared_voxel_counts`` and ``nearest.nearest_borders`` between the two, computed once;
3. with ``surface_definition="surfel"``: ``surfels.surfel_parts`` of both and their own
   ``nearest_borders`` (the boundary metrics use these; matching keeps the border voxels);
4. ``case.case_scores`` -> ``scores.from_distances`` -> ``surface.summarize`` and the formulas;
5. ``lesionwise.evaluate_lesions`` -> ``matching.match`` (merged lesions, hits) ->
   ``lesionwise.merged_lesion_scores`` -> ``scores.grouped_scores`` (all merged lesions at once).

Every step receives what the earlier ones computed; none recomputes it.
"""

from .case import CaseEvaluation, case_metrics, evaluate_case
from .lesionwise import LesionScores, evaluate_lesions
from .parts import Parts, find_parts
from .scores import METRICS, Scores, score
from .surface import border, default_penalty

__all__ = [
    "METRICS",
    "CaseEvaluation",
    "LesionScores",
    "Parts",
    "Scores",
    "border",
    "case_metrics",
    "default_penalty",
    "evaluate_case",
    "evaluate_lesions",
    "find_parts",
    "score",
]
