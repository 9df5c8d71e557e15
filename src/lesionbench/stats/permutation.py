"""Label-permutation tests of the verdict's boundary findings (docs/statistics.md).

Null hypothesis: the top models are exchangeable within a case. Under it, which model's prediction of a
case carries which label is arbitrary, so every relabelling of the top models, drawn independently per case
(the case's lesions and all seeds of a model travel together), is as likely as the observed labelling. A
finding's statistic is recomputed under each relabelling, *including* every choice the finding makes after
looking at the data (which pair is best vs worst, HD95 or ASD, which reversed pair, which quartile, the
overall-Dice order the reversal is measured against), so the selection is inside the statistic and its
p-value is honest.

The ``common`` lesion set (lesions detected by every top model and seed) does not change under relabelling:
it is a symmetric function of the models. Its per-case counts (the denominators) are therefore fixed, and
only the per-case numerators move.

Enumeration is exact when the number of relabellings, ``(k!) ** n_cases``, is at most the configured number
of permutations (then the p-value is the share of relabellings, identity included, whose statistic reaches
the observed one); otherwise a seeded Monte Carlo draw of B relabellings gives ``(b + 1) / (B + 1)``.
Relabelled per-case sums are built in chunks (a gather over a (B, n_cases, k) index array), so no Python
loop runs per permutation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .strata import KEY_INDEX, CaseSums

# Statistics equal up to this relative tolerance count as reaching the observed one (summation order).
TIE_TOLERANCE = 1e-9
CHUNK = 128  # relabellings gathered at once (memory: CHUNK x n_cases x k x n_keys floats)


@dataclass
class LabelData:
    """Per-case sums of the top models on the keys a statistic reads.

    x: (k, n_cases, n_keys) numerators averaged over seeds; den: (n_cases, n_keys) denominators, the same
    for every model and seed (lesion sets ``all`` and ``common``); keys: (lesion_set, stratum, metric) per
    column; models: the top models, in the order of x.
    """

    x: np.ndarray
    den: np.ndarray
    keys: tuple
    models: tuple

    @property
    def n_cases(self) -> int:
        return self.x.shape[1]

    def column(self, key) -> int:
        return self.keys.index(key)


def label_data(sums: CaseSums, models, keys) -> LabelData:
    """The seed-averaged numerators of ``models`` and the shared denominators on ``keys`` (paired sets only)."""
    idx = [KEY_INDEX[k] for k in keys]
    rows = [sums.models.index(m) for m in models]
    num = sums.num[rows][..., idx]  # (k, seeds, cases, keys)
    # All and common denominators are identical over models and seeds, so the seed mean of the ratio is
    # the ratio of the seed-mean numerator.
    return LabelData(num.mean(axis=1), sums.den[0, 0][:, idx], tuple(keys), tuple(models))


def n_relabellings(n_cases: int, k: int) -> int:
    return math.factorial(k) ** n_cases


def relabellings(n_cases: int, k: int, permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(index array (P, n_cases, k), exact): every relabelling when there are at most ``permutations`` of
    them, else ``permutations`` seeded random ones. Row p, case c: slot m takes model ``index[p, c, m]``."""
    if n_relabellings(n_cases, k) <= permutations:
        per_case = list(itertools.permutations(range(k)))
        full = np.array(list(itertools.product(per_case, repeat=n_cases)), np.int64)
        return full.reshape(-1, n_cases, k), True
    base = np.broadcast_to(np.arange(k), (permutations, n_cases, k))
    return rng.permuted(base, axis=-1), False


def relabelled(data: LabelData, index: np.ndarray) -> np.ndarray:
    """Per-case numerators under relabellings: (P, n_cases, k, n_keys)."""
    by_case = np.moveaxis(data.x, 0, 1)  # (cases, k, keys)
    return np.take_along_axis(by_case[None], index[..., None], axis=2)


def identity(n_cases: int, k: int) -> np.ndarray:
    return np.broadcast_to(np.arange(k), (1, n_cases, k))


def permutation_pvalue(observed: float, null: np.ndarray, exact: bool) -> float:
    """Share of relabellings reaching the observed statistic: exact (identity among them) or (b+1)/(B+1)."""
    reach = int(np.count_nonzero(null >= observed - TIE_TOLERANCE * max(1.0, abs(observed))))
    if np.isinf(observed) and observed > 0:
        reach = int(np.count_nonzero(np.isposinf(null)))
    return reach / len(null) if exact else (reach + 1) / (len(null) + 1)


Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class PermutationResult:
    observed: float
    p_value: float
    n_permutations: int
    exact: bool


def permutation_tests(
    data: LabelData, statistics: dict[str, Statistic], permutations: int, rng: np.random.Generator
) -> dict[str, PermutationResult]:
    """Each ``statistic(per_case, den) -> (P,)`` (per_case: (P, n_cases, k, n_keys)) on the observed
    labelling and on the same relabellings: {name: PermutationResult}."""
    k = data.x.shape[0]
    first = relabelled(data, identity(data.n_cases, k))
    observed = {name: float(f(first, data.den)[0]) for name, f in statistics.items()}
    index, exact = relabellings(data.n_cases, k, permutations, rng)
    null: dict[str, list] = {name: [] for name in statistics}
    for i in range(0, len(index), CHUNK):
        chunk = relabelled(data, index[i : i + CHUNK])
        for name, f in statistics.items():
            null[name].append(f(chunk, data.den))
    return {
        name: PermutationResult(
            observed[name], permutation_pvalue(observed[name], np.concatenate(null[name]), exact), len(index), exact
        )
        for name in statistics
    }
