"""Calibration: each control's strength set so its overall Dice hits the target (controls tied under Dice).

The overall Dice of a control (mean case-level Dice over the test cases, ``ControlBuilder.mean_dice``) falls
as its strength grows. ``calibrate`` brackets the target (strength 0 is the reference itself minus the shared
drop; the upper end doubles from the finest voxel spacing until the Dice falls below the target) and then
narrows the bracket by false position (Illinois variant), falling back to bisection. Only the cheap Dice is
computed, never a boundary metric. Because masks are discrete the Dice is a step function of the strength
(``perturbations.Lesion.tie`` makes the steps single voxels); the strength whose Dice is closest to the target
is kept. On a data set where one voxel moves the overall Dice by more than twice the tolerance (a test case
holding only a lesion of a few voxels), the target can fall inside such a step; the closest Dice is then
kept with ``within_tolerance`` False and a warning, so the verdict on the controls, not a failed run,
reports that they are not tied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .build import ControlBuilder, ControlError, ControlSpec

log = logging.getLogger(__name__)

MAX_BISECTIONS = 60


@dataclass(frozen=True)
class Calibration:
    """Result of ``calibrate``: the strength (mm), the overall Dice it gives, and the evaluations spent."""

    strength_mm: float
    dice: float
    evaluations: int
    within_tolerance: bool = True


def calibrate(builder: ControlBuilder, spec: ControlSpec, target: float, tolerance: float) -> Calibration:
    """The strength whose overall Dice is closest to ``target`` (``within_tolerance`` says whether it is
    within ``tolerance``).

    The search stops as soon as the Dice is within ``tolerance / 2`` of the target (so any two controls are
    within ``tolerance`` of each other) or after ``MAX_BISECTIONS`` steps.
    """
    if not 0.0 < target < 1.0:
        raise ControlError(f"dice_target must lie in (0, 1), got {target!r}")
    where = f"data set {builder.dataset!r}, control {spec.name!r} ({spec.perturbation})"
    evaluations = 0

    def f(s: float) -> float:
        nonlocal evaluations
        evaluations += 1
        return builder.mean_dice(spec, s)

    lo, d_lo = 0.0, f(0.0)
    if d_lo <= target:
        if d_lo < target - tolerance:
            log.warning(
                "%s: at strength 0 (the shared drop and the lesions too small to survive postprocessing "
                "only) the overall Dice is already %.4f, below the target %s: the controls cannot be tied "
                "at this target (lower controls.drop_fraction or controls.dice_target)",
                where,
                d_lo,
                target,
            )
        return Calibration(lo, d_lo, evaluations, d_lo >= target - tolerance)
    best = (abs(d_lo - target), lo, d_lo)
    # a strength beyond the largest image extent changes nothing more (and would make huge crops)
    ceiling = max(float(np.sqrt(sum((n * sp) ** 2 for n, sp in zip(c.mask.shape, c.spacing)))) for c in builder.cases)
    hi = min(min(c.spacing) for c in builder.cases)
    d_hi = f(hi)
    while d_hi > target and hi < ceiling:
        lo, d_lo = hi, d_hi
        hi = min(2.0 * hi, ceiling)
        d_hi = f(hi)
    if d_hi > target:
        log.warning(
            "%s: overall Dice is still %.4f at strength %.4g mm (the image extent), above the target %s: "
            "this perturbation cannot lower the Dice of these lesions enough",
            where,
            d_hi,
            hi,
            target,
        )
        return Calibration(hi, d_hi, evaluations, abs(d_hi - target) <= tolerance)
    best = min(best, (abs(d_lo - target), lo, d_lo), (abs(d_hi - target), hi, d_hi))
    # Illinois false position on the bracket (the Dice falls smoothly between voxel steps, so it needs far
    # fewer evaluations than bisection); a plain halving whenever the interpolated point is not inside it.
    side = 0
    for _ in range(MAX_BISECTIONS):
        if best[0] <= tolerance / 2:
            break
        f_lo, f_hi = d_lo - target, d_hi - target
        mid = hi - f_hi * (hi - lo) / (f_hi - f_lo) if f_lo != f_hi else 0.5 * (lo + hi)
        if not lo < mid < hi:
            mid = 0.5 * (lo + hi)
        d_mid = f(mid)
        best = min(best, (abs(d_mid - target), mid, d_mid))
        if d_mid > target:
            lo, d_lo = mid, d_mid
            if side == -1:  # the same end moved twice: halve the other end's weight (Illinois)
                d_hi = target + 0.5 * (d_hi - target)
            side = -1
        else:
            hi, d_hi = mid, d_mid
            if side == 1:
                d_lo = target + 0.5 * (d_lo - target)
            side = 1
        if hi - lo <= 1e-9 * max(hi, 1.0):
            break
    error, strength, dice = best
    if error > tolerance:
        log.warning(
            "%s: the closest overall Dice is %.4f at strength %.6g mm, %.4f from the target %s (tolerance "
            "%s): one voxel moves this data set's overall Dice by more than the tolerance (a test case "
            "with only a few lesion voxels)",
            where,
            dice,
            strength,
            error,
            target,
            tolerance,
        )
    else:
        log.info(
            "%s: strength %.4f mm gives overall Dice %.4f (target %.3f, %d evaluations)",
            where,
            strength,
            dice,
            target,
            evaluations,
        )
    return Calibration(strength, dice, evaluations, error <= tolerance)
