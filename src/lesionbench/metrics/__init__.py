"""Segmentation metrics of the study (docs/metrics.md): one implementation, used for every model.

- ``surface``: borders, surface distances, HD95, ASD, contour F1, NSD, the default distance penalty;
- ``overlap``: Dice and IoU;
- ``scores``: every metric of one pair with the empty-mask rules (``Scores``, ``score``);
- ``parts``: connected components as boxed crops (no full-volume labelling);
- ``boxes``: pairs of components whose boxes meet, and their shared voxel counts;
- ``nearest``: nearest border points between components (exact k-d tree queries, many pairs at once);
- ``matching``: BraTS 2023 merged lesions and hits;
- ``lesionwise``: lesion-wise scores of merged lesions and false positives;
- ``case``: one case end to end (``evaluate_case``) and plain two-mask metrics (``case_metrics``).
"""

from .case import CaseEvaluation, case_metrics, evaluate_case
from .lesionwise import LesionScores, evaluate_lesions
from .parts import Parts, find_parts
from .scores import METRICS, Scores, score
from .surface import border, default_penalty

__all__ = ["CaseEvaluation", "LesionScores", "METRICS", "Parts", "Scores", "border", "case_metrics",
           "default_penalty", "evaluate_case", "evaluate_lesions", "find_parts", "score"]
