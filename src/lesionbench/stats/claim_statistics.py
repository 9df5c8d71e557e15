"""The test statistics of the verdict's boundary findings, vectorised over relabellings (docs/statistics.md).

Each function maps relabelled per-case sums ``x`` (P, n_cases, k, n_keys) and the shared denominators
``den`` (n_cases, n_keys) of ``STAT_KEYS`` to one statistic per relabelling (P,). Every choice a finding
makes after looking at the data is inside its statistic, and a boundary difference below the resolution
floor (``floor``, in the metric's unit, mm) counts as no difference:

- ``separation`` (q1_boundary_separation): the largest, over HD95 and ASD, common-Q1 relative spread
  (max - min) / min x 100 of the top models, counted only where it is at least ``min_spread_pct``, at least
  ``ratio`` x the same metric's all-cases relative spread, and its best-vs-worst difference is at least
  ``floor``; else 0.
- ``reversal`` (ranking_change): the largest, over HD95, ASD and contour F1 and over model pairs, studentised
  reversal on common Q1 lesions: the amount by which the overall-Dice-better model of the pair is worse
  under the metric, over its standard error (linearised ratio estimator over cases); pairs tied under Dice,
  not reversed, or (HD95/ASD) apart by less than ``floor`` count 0.
- ``q1_strongest`` (smallest_quartile_strongest): D(Q1) - max(D(Q2), D(Q3), D(Q4)), D(q) the mean of the HD95
  and ASD relative spreads on common lesions of quartile q (a spread below the floor counts 0).
- ``alignment`` (large_lesions_align): tau(Q4) - tau(Q1), tau(q) the mean over HD95, ASD and contour F1 of
  Kendall's tau-a between the top models' overall-Dice order and their order under the metric on common
  lesions of q (ties count as neither concordant nor discordant).
"""

from __future__ import annotations

import numpy as np

from .strata import ALL, COMMON
from .tables import BOUNDARY_METRICS, HIGHER_IS_BETTER, QUARTILES

DISTANCES = ("hd95", "asd")
STAT_KEYS = (
    (ALL, "overall", "dice"),
    *((ALL, "overall", m) for m in DISTANCES),
    *((COMMON, q, m) for q in QUARTILES for m in BOUNDARY_METRICS),
)
COLUMN = {key: i for i, key in enumerate(STAT_KEYS)}


def means(x: np.ndarray, den: np.ndarray, key) -> np.ndarray:
    """(P, k) ratio-of-sums means of one key (NaN where the key has no lesion)."""
    j = COLUMN[key]
    total = den[:, j].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return x[..., j].sum(axis=1) / total


def relative_spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((max - min) / min x 100, max - min) over the model axis (-1); spread 0 if all equal, inf if only
    the smallest is 0 (as ``summary.relative_spread_pct``)."""
    low, high = values.min(axis=-1), values.max(axis=-1)
    gap = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(gap == 0, 0.0, np.where(low == 0, np.inf, gap / np.where(low == 0, 1.0, low) * 100.0))
    return rel, gap


def floored_spread(x, den, stratum: str, metric: str, floor: float) -> np.ndarray:
    rel, gap = relative_spread(means(x, den, (COMMON, stratum, metric)))
    return np.where(gap >= floor, rel, 0.0)


def separation(min_spread_pct: float, ratio: float, floor: float):
    def statistic(x: np.ndarray, den: np.ndarray) -> np.ndarray:
        best = np.zeros(x.shape[0])
        for metric in DISTANCES:
            q1, gap = relative_spread(means(x, den, (COMMON, "Q1", metric)))
            overall, _ = relative_spread(means(x, den, (ALL, "overall", metric)))
            ok = (q1 >= min_spread_pct) & (q1 >= ratio * overall) & (gap >= floor)
            best = np.maximum(best, np.where(ok, q1, 0.0))
        return best

    return statistic


def _pairs(k: int):
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def reversal(floor: float):
    def statistic(x: np.ndarray, den: np.ndarray) -> np.ndarray:
        dice = means(x, den, (ALL, "overall", "dice"))
        n_cases, k = x.shape[1], x.shape[2]
        best = np.zeros(x.shape[0])
        for metric in BOUNDARY_METRICS:
            j = COLUMN[(COMMON, "Q1", metric)]
            d_case, total = den[:, j], den[:, j].sum()
            if total == 0 or n_cases < 2:
                continue
            worse = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
            for a, b in _pairs(k):
                dice_order = np.sign(dice[:, a] - dice[:, b])  # +1: a better under Dice
                gap_case = x[:, :, a, j] - x[:, :, b, j]  # (P, cases)
                gap = gap_case.sum(axis=1) / total
                amount = dice_order * worse * gap  # > 0: the Dice-better model is worse under the metric
                resid = gap_case - gap[:, None] * d_case[None]
                se = np.sqrt(n_cases / (n_cases - 1) * (resid**2).sum(axis=1)) / total
                with np.errstate(invalid="ignore", divide="ignore"):
                    z = np.where(se > 0, amount / np.where(se > 0, se, 1.0), np.inf)
                ok = (amount > 0) & (dice_order != 0)
                if metric in DISTANCES:
                    ok &= np.abs(gap) >= floor
                best = np.maximum(best, np.where(ok, z, 0.0))
        return best

    return statistic


def quartile_disagreement(x, den, floor: float) -> np.ndarray:
    """(P, 4): mean of the floored HD95 and ASD relative spreads per quartile."""
    return np.stack(
        [np.mean([floored_spread(x, den, q, m, floor) for m in DISTANCES], axis=0) for q in QUARTILES], axis=1
    )


def q1_strongest(floor: float):
    def statistic(x: np.ndarray, den: np.ndarray) -> np.ndarray:
        d = quartile_disagreement(x, den, floor)
        with np.errstate(invalid="ignore"):
            out = d[:, 0] - d[:, 1:].max(axis=1)
        return np.where(np.isnan(out), 0.0, out)  # inf - inf: no evidence either way

    return statistic


def kendall_tau_to_dice(x, den, stratum: str) -> np.ndarray:
    """(P,): mean over the boundary metrics of Kendall's tau-a between the overall-Dice order and the
    metric's order on common lesions of ``stratum``."""
    dice = means(x, den, (ALL, "overall", "dice"))
    k = x.shape[2]
    pairs = _pairs(k)
    taus = []
    for metric in BOUNDARY_METRICS:
        v = means(x, den, (COMMON, stratum, metric))
        better = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
        concord = sum(np.sign(dice[:, a] - dice[:, b]) * np.sign(better * (v[:, a] - v[:, b])) for a, b in pairs)
        taus.append(concord / len(pairs))
    return np.mean(taus, axis=0)


def alignment(x: np.ndarray, den: np.ndarray) -> np.ndarray:
    return kendall_tau_to_dice(x, den, "Q4") - kendall_tau_to_dice(x, den, "Q1")
