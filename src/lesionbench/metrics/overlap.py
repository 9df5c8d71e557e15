"""Volume overlap (docs/metrics.md), from voxel counts."""

from __future__ import annotations


def dice(n_ref: int, n_pred: int, n_inter: int) -> float:
    """Dice = 2|P & R| / (|P| + |R|); 1 when both masks are empty (never NaN)."""
    total = n_ref + n_pred
    return 1.0 if total == 0 else 2.0 * n_inter / total


def iou(n_ref: int, n_pred: int, n_inter: int) -> float:
    """IoU (Jaccard) = |P & R| / |P or R| with |P or R| = |P| + |R| - |P & R|; 1 when both are empty."""
    union = n_ref + n_pred - n_inter
    return 1.0 if union == 0 else float(n_inter) / union
