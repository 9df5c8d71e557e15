"""Segmentation metrics of the study (DESIGN section 3): one implementation, used for every model.

- ``surface``: borders, surface distances, HD95, ASD, contour F1, NSD, the default distance penalty;
- ``overlap``: Dice and IoU;
- ``scores``: every metric of one pair with the empty-mask rules (``Scores``, ``score``);
- ``parts``: connected components as boxed crops (no full-volume labelling);
- ``lesionwise``: BraTS 2023 lesion-wise matching on per-lesion crops;
- ``case``: one case end to end (``evaluate_case``) and plain two-mask metrics (``case_metrics``).
"""

from .case import CaseEvaluation, case_metrics, evaluate_case
from .lesionwise import LesionScores, evaluate_lesions
from .parts import Parts, find_parts
from .scores import METRICS, Scores, score
from .surface import border, default_penalty

__all__ = ["CaseEvaluation", "LesionScores", "METRICS", "Parts", "Scores", "border", "case_metrics",
           "default_penalty", "evaluate_case", "evaluate_lesions", "find_parts", "score"]
