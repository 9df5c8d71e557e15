"""Loss (soft Dice + BCE) and learning-rate schedule (linear warm-up, then cosine decay)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def dice_bce_loss(
    logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0, bce_weight: float = 1.0, smooth: float = 1.0
) -> torch.Tensor:
    """``dice_weight * (1 - soft Dice) + bce_weight * BCE``.

    The soft Dice pools all voxels of the batch, ``(2 sum(p t) + smooth) / (sum p + sum t + smooth)``,
    so batches of lesion-free slices stay well defined. Computed in float32.
    """
    logits, target = logits.float(), target.float()
    loss = logits.new_zeros(())
    if bce_weight:
        loss = loss + bce_weight * F.binary_cross_entropy_with_logits(logits, target)
    if dice_weight:
        p = torch.sigmoid(logits)
        dice = (2 * (p * target).sum() + smooth) / (p.sum() + target.sum() + smooth)
        loss = loss + dice_weight * (1 - dice)
    return loss


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier at optimizer step ``step`` (0-based): ``(step+1)/warmup`` during warm-up, then cosine
    from 1 to ``min_ratio`` at the last step of the budget."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps - 1)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps, min_ratio)
    )
