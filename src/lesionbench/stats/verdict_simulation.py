"""Simulated studies for the verdict's error rates: per-case sums drawn from one per-lesion error law.

Each simulated data set holds ``4 x n_q1`` reference lesions, all detected by every model (the ``common``
set, so exactly ``n_q1`` of them fall in Q1: quartiles are by size rank), ``lesions_per_case`` to a case.
Lesion radii are uniform in 1-3 px (spacing 1 mm), as small blobs. Per lesion and model:

- a boundary error ``b = s(r) * (0.6 * d + 0.4 * g)``, ``d`` a difficulty shared by every model
  (exponential, mean 1) and ``g`` the model's own (exponential, mean 1); ``s(r)`` shrinks with the radius;
- HD95 = b rounded to the nearest grid distance sqrt(i^2 + j^2) px (the sub-voxel resolution of small
  blobs); ASD = 0.45 x b plus a little noise, clipped at 0; contour F1 = clip(1 - 0.3 b + noise, 0, 1).

Case-level Dice is 0.8 plus a case effect shared by the models and a small model noise (models tied under
Dice); case-level HD95/ASD are the means over the case's lesions. Every model follows the same law
(exchangeable: the null), except the ``affected`` models of a planted effect, whose boundary error on Q1
lesions is multiplied by ``planted_factor(effect_pct)``: the factor that makes their expected Q1 HD95
``effect_pct`` % above the others'. Dice stays tied.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .strata import ALL, COMMON, KEY_INDEX, KEYS, CaseSums
from .tables import CASE_METRICS, QUARTILES

GRID = np.unique(np.sqrt(np.add.outer(np.arange(12) ** 2, np.arange(12) ** 2)).ravel())


def _scale(radius: np.ndarray) -> np.ndarray:
    return 1.6 + 0.3 * (3.0 - radius)


def _hd95(b: np.ndarray) -> np.ndarray:
    i = np.clip(np.searchsorted(GRID, b), 1, len(GRID) - 1)
    return np.where(np.abs(GRID[i] - b) < np.abs(GRID[i - 1] - b), GRID[i], GRID[i - 1])


@cache
def planted_factor(effect_pct: float) -> float:
    """Multiplier of the boundary error whose expected HD95 is ``effect_pct`` % above the unmultiplied one on
    the smallest-quartile radii (bisection on a large fixed sample)."""
    if effect_pct == 0:
        return 1.0
    rng = np.random.default_rng(0)
    r = rng.uniform(1.0, 1.5, 200_000)  # the radii of Q1 (the smallest quarter of 1-3 px)
    base = _scale(r) * (0.6 * rng.exponential(1.0, r.size) + 0.4 * rng.exponential(1.0, r.size))
    target = _hd95(base).mean() * (1 + effect_pct / 100.0)
    low, high = 1.0, 1.0 + 4 * effect_pct / 100.0 + 1.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if _hd95(base * mid).mean() < target else (low, mid)
    return (low + high) / 2


def simulated_sums(
    rng: np.random.Generator,
    n_q1: int,
    n_models: int = 4,
    lesions_per_case: int = 18,
    effect_pct: float = 0.0,
    affected: int = 2,
    dataset: str = "sim",
) -> CaseSums:
    """Per-case sums (every key of ``strata.KEYS`` that the verdict reads) of one simulated data set."""
    n_les = 4 * n_q1
    n_cases = max(2, int(np.ceil(n_les / lesions_per_case)))
    case = np.sort(np.arange(n_les) % n_cases)
    radius = rng.uniform(1.0, 3.0, n_les)
    quartile = np.empty(n_les, np.int64)
    quartile[np.argsort(radius, kind="stable")] = np.repeat(np.arange(4), n_q1)
    shared = rng.exponential(1.0, n_les)
    own = rng.exponential(1.0, (n_models, n_les))
    b = _scale(radius) * (0.6 * shared + 0.4 * own)
    if effect_pct:
        b[:affected, quartile == 0] *= planted_factor(effect_pct)
    values = {
        "hd95": _hd95(b),
        "asd": np.clip(0.45 * b + rng.normal(0, 0.05, b.shape), 0, None),
        "contour_f1": np.clip(1 - 0.3 * b + rng.normal(0, 0.03, b.shape), 0, 1),
    }
    values["dice"] = np.clip(0.7 - 0.1 * b, 0, 1)
    num = np.zeros((n_models, 1, n_cases, len(KEYS)))
    den = np.zeros_like(num)
    for k, q in enumerate(QUARTILES):
        weight = np.bincount(case, weights=(quartile == k).astype(float), minlength=n_cases)
        for metric in CASE_METRICS:
            j = KEY_INDEX[(COMMON, q, metric)]
            den[..., j] = weight
            v = values.get(metric)
            if v is None:
                continue
            for m in range(n_models):
                num[m, 0, :, j] = np.bincount(case, weights=v[m] * (quartile == k), minlength=n_cases)
    case_dice = 0.8 + rng.normal(0, 0.03, n_cases)[None] + rng.normal(0, 0.002, (n_models, n_cases))
    count = np.bincount(case, minlength=n_cases)
    for metric in CASE_METRICS:
        j = KEY_INDEX[(ALL, "overall", metric)]
        den[..., j] = 1.0
        if metric == "dice":
            num[:, 0, :, j] = case_dice
        elif metric in values:
            for m in range(n_models):
                num[m, 0, :, j] = np.bincount(case, weights=values[metric][m], minlength=n_cases) / count
    edges = {s: (0.0, 1.0) for s in ("overall", *QUARTILES)}
    return CaseSums(
        dataset,
        tuple(f"case_{c:03d}" for c in range(n_cases)),
        tuple(f"model_{m}" for m in range(n_models)),
        (0,),
        num,
        den,
        edges,
    )
