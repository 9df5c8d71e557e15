"""Paired tests between models on per-case values: Wilcoxon signed-rank, Holm correction, and the median
paired difference with its bootstrap interval.

Per-case values come from the per-case sums (``strata``): the value of case c under key k is
``num[c, k] / den[c, k]``, defined where ``den[c, k] > 0``. For a case-level metric over all cases that is the
case's metric; for a size stratum it is the mean of the metric over the case's lesions in the stratum (the
"per-case lesion mean"); for lesion recall the case's share of detected lesions. Cases whose denominator is 0
(no lesion of the stratum) are left out of the test and counted (``n_cases_left_out``). Seeds: numerators are
averaged over seeds first, so a model's per-case value is its seed mean.

- Test: ``scipy.stats.wilcoxon(value_a, value_b)`` with scipy's defaults (two-sided, ``zero_method='wilcox'``:
  zero differences are dropped; ``method='auto'``), computed in vectorized scipy calls that give the same
  p-values (``wilcoxon_tests``); no test statistic is re-implemented. When every difference is zero there is
  no evidence either way: p = 1. The
  direction of a difference is the side with the larger signed-rank sum (``rank_sum_a`` = scipy's one-sided
  ``alternative='greater'`` statistic, the sum of ranks of positive ``a - b``; ``rank_sum_b`` the rest).
- Holm step-down over one family: the p-values sorted ascending ``p_(1) <= ... <= p_(m)`` are adjusted to
  ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``; ``significant`` = ``p~ < alpha``.
- Median paired difference ``median(a - b)`` over the included cases (numpy median), with a percentile
  interval from the paired case bootstrap's weight matrix (``bootstrap.weight_matrix``): resample b holds case
  c ``W[b, c]`` times, so its median is the weighted median of the differences, computed for every resample
  at once from cumulative weights over the sorted differences (no loop per resample). A resample that draws
  no included case has no median and is left out (``n_valid_resamples``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import permutation_test, wilcoxon


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (step-down, capped at 1), in the input order."""
    p = np.asarray(pvalues, float).ravel()
    if p.size == 0:
        return p
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def per_case_values(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-case values ``num / den`` and the mask of defined cases.

    num: (n_models, n_cases, n_keys) seed-averaged numerators; den: (n_cases, n_keys).
    Returns values (n_models, n_cases, n_keys) with NaN where undefined, and included (n_cases, n_keys).
    """
    included = den > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        values = num / den[None]
    values[:, ~included] = np.nan
    return values, included


def _rank_sum_positive(d: np.ndarray, axis: int = -1) -> np.ndarray:
    """scipy's signed-rank statistic r+ (sum of the ranks of |d| over positive d, zeros dropped), vectorized:
    the statistic ``scipy.stats.wilcoxon`` reports for ``alternative='greater'``."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(wilcoxon(d, alternative="greater", method="asymptotic", axis=axis).statistic, float)


def wilcoxon_tests(diffs: list[np.ndarray]) -> dict:
    """Two-sided Wilcoxon signed-rank tests of many paired-difference vectors, as ``scipy.stats.wilcoxon(d)``
    with its defaults gives them, in a few vectorized calls.

    Returns arrays over the vectors: ``statistic`` (scipy's two-sided statistic min(r+, r-)), ``p_value``,
    ``n_nonzero``, ``rank_sum_a`` (r+) and ``rank_sum_b`` (r-).

    How: statistics come from scipy's wilcoxon on all vectors of one length at once. For up to 13 cases
    scipy's default p-value is the exact null distribution of r+ over all 2^n sign flips (its ``exact``
    branch without ties or zeros, its permutation branch with them); the same enumeration is run here by
    ``scipy.stats.permutation_test`` with scipy's own statistic, vectorized over the flips and the vectors
    (scipy evaluates it one flip at a time, hundreds of times slower). Single cases and longer vectors go to
    ``scipy.stats.wilcoxon`` one by one (its exact or normal-approximation branch, both fast). All differences
    zero: no evidence either way, p = 1 and statistic 0 (what scipy returns up to 13 cases; beyond, its normal
    approximation divides by a zero variance). The tests check equality with scipy vector by vector.
    """
    r = len(diffs)
    out = {
        "statistic": np.zeros(r),
        "p_value": np.ones(r),
        "n_nonzero": np.zeros(r, np.int64),
        "rank_sum_a": np.zeros(r),
        "rank_sum_b": np.zeros(r),
    }
    lengths = np.array([len(d) for d in diffs], np.int64)
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        block = np.stack([np.asarray(diffs[i], float) for i in idx])  # (R_n, n)
        nonzero = np.count_nonzero(block, axis=1)
        live = nonzero > 0
        if not live.any():
            continue
        rows, block = idx[live], block[live]
        r_plus = _rank_sum_positive(block)
        r_minus = nonzero[live] * (nonzero[live] + 1) / 2.0 - r_plus
        out["n_nonzero"][rows] = nonzero[live]
        out["rank_sum_a"][rows], out["rank_sum_b"][rows] = r_plus, r_minus
        out["statistic"][rows] = np.minimum(r_plus, r_minus)
        if 2 <= n <= 13:  # (permutation_test needs two cases; one case is scipy's exact branch)
            with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                res = permutation_test(
                    (block,),
                    _rank_sum_positive,
                    permutation_type="samples",
                    vectorized=True,
                    n_resamples=np.inf,
                    alternative="two-sided",
                    axis=-1,
                )
            out["p_value"][rows] = np.atleast_1d(res.pvalue)
        else:
            for j, d in zip(rows, block):
                out["p_value"][j] = float(wilcoxon(d).pvalue)
    bad = ~np.isfinite(out["p_value"])
    if bad.any():
        first = list(diffs[int(np.flatnonzero(bad)[0])])
        raise ValueError(f"scipy.stats.wilcoxon gave p = nan for differences {first}")
    return out


def weighted_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Median of each resample, where resample b holds ``values[j]`` ``weights[b, j]`` times.

    values: (..., n); weights: (B, n) non-negative integer counts. Returns (B, ...): for each resample the
    numpy median of the expanded multiset (mean of the two middle elements when its size is even), NaN when
    the resample holds no value.
    """
    values = np.asarray(values, float)
    lead = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1])  # (G, n)
    order = np.argsort(flat, axis=1, kind="stable")
    sorted_vals = np.take_along_axis(flat, order, axis=1)  # (G, n)
    # integer counts: cumulative sums stay exact (a resample holds at most n_cases draws) and move an eighth
    # of the bytes of float64
    weights = np.asarray(weights)
    kind: type[np.integer] = (
        np.int16 if weights.shape[1] and weights.sum(axis=1).max() < np.iinfo(np.int16).max else np.int64
    )
    counts = weights.astype(kind)[:, order]  # (B, G, n)
    cum: np.ndarray = np.cumsum(counts, axis=2, dtype=kind)
    total: np.ndarray = cum[:, :, -1] if flat.shape[1] else np.zeros(cum.shape[:2], kind)
    lo = (total - 1) // 2  # 0-based positions of the two middle draws (equal when total is odd)
    hi = total // 2
    n = flat.shape[1]
    i_lo = np.minimum((cum <= lo[..., None]).sum(axis=2), n - 1)
    i_hi = np.minimum((cum <= hi[..., None]).sum(axis=2), n - 1)
    g = np.arange(flat.shape[0])[None, :]
    out = 0.5 * (sorted_vals[g, i_lo] + sorted_vals[g, i_hi]) if n else np.full(total.shape, np.nan)
    out = np.where(total > 0, out, np.nan)
    return out.reshape((weights.shape[0],) + lead)


def median_difference_ci(diffs: np.ndarray, weights: np.ndarray, confidence: float):
    """Observed median and percentile interval of each row of paired differences.

    diffs: (G, n) differences over the included cases; weights: (B, n) the bootstrap counts of those cases.
    Returns (median (G,), ci_low (G,), ci_high (G,), n_valid (G,)).
    """
    from .bootstrap import percentile_ci

    diffs = np.atleast_2d(np.asarray(diffs, float))
    observed = np.median(diffs, axis=1) if diffs.shape[1] else np.full(diffs.shape[0], np.nan)
    samples = weighted_medians(diffs, weights)  # (B, G)
    low, high, n_valid = percentile_ci(samples, confidence)
    return observed, low, high, n_valid


TEST_COLUMNS = [
    "dataset",
    "lesion_set",
    "stratum",
    "metric",
    "higher_is_better",
    "pair_first",
    "pair_second",
    "n_cases",
    "n_cases_left_out",
    "n_nonzero",
    "median_difference",
    "ci_low",
    "ci_high",
    "n_valid_resamples",
    "statistic",
    "rank_sum_a",
    "rank_sum_b",
    "better_model",
    "p_value",
]

# Cells per chunk of the weighted-median computation: B x cells x cases stays near this many numbers.
_MEDIAN_CHUNK = 4_000_000


def pairwise_tests(
    dataset: str,
    models,
    keys,
    num: np.ndarray,
    den: np.ndarray,
    weights: np.ndarray,
    confidence: float,
    higher_is_better: dict,
    pairs,
) -> pd.DataFrame:
    """Wilcoxon test and median paired difference of every model pair x key of one data set (one lesion set).

    models: names along axis 0 of ``num`` (n_models, n_cases, n_keys, seed-averaged numerators); den:
    (n_cases, n_keys), the same for every model (a paired lesion set); keys: (lesion_set, stratum, metric)
    per key; weights: (B, n_cases) bootstrap counts; pairs:
    [(pair_first, pair_second)] with differences taken as a - b. Keys without any included case give no row.
    ``better_model`` is the side with the larger signed-rank sum, accounting for the metric's direction
    ("tie" when the sums are equal); Holm adjustment is applied afterwards over families (``holm_families``).
    """
    models = list(models)
    values, included = per_case_values(num, den)
    ia = np.array([models.index(a) for a, _ in pairs], np.int64)
    ib = np.array([models.index(b) for _, b in pairs], np.int64)
    cells, vectors = [], []
    for k, (lesion_set, stratum, metric) in enumerate(keys):
        inc = included[:, k]
        n_inc = int(inc.sum())
        if n_inc == 0 or not len(pairs):
            continue
        diffs = values[ia][:, inc, k] - values[ib][:, inc, k]  # (P, n_inc)
        w = weights[:, inc]
        step = max(1, _MEDIAN_CHUNK // max(1, w.shape[0] * n_inc))
        parts = [median_difference_ci(diffs[s : s + step], w, confidence) for s in range(0, len(pairs), step)]
        med, low, high, n_valid = (np.concatenate(x) for x in zip(*parts))
        for p, (a, b) in enumerate(pairs):
            vectors.append(diffs[p])
            cells.append(
                {
                    "dataset": dataset,
                    "lesion_set": lesion_set,
                    "stratum": stratum,
                    "metric": metric,
                    "higher_is_better": higher_is_better[metric],
                    "pair_first": a,
                    "pair_second": b,
                    "n_cases": n_inc,
                    "n_cases_left_out": int(len(inc) - n_inc),
                    "median_difference": float(med[p]),
                    "ci_low": float(low[p]),
                    "ci_high": float(high[p]),
                    "n_valid_resamples": int(n_valid[p]),
                }
            )
    t = wilcoxon_tests(vectors)
    rows = []
    for i, cell in enumerate(cells):
        ra, rb = float(t["rank_sum_a"][i]), float(t["rank_sum_b"][i])
        if ra == rb:
            better = "tie"
        else:
            better = cell["pair_first"] if (ra > rb) == cell["higher_is_better"] else cell["pair_second"]
        rows.append(
            {
                **cell,
                "n_nonzero": int(t["n_nonzero"][i]),
                "statistic": float(t["statistic"][i]),
                "rank_sum_a": ra,
                "rank_sum_b": rb,
                "better_model": better,
                "p_value": float(t["p_value"][i]),
            }
        )
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def holm_families(tests: pd.DataFrame, family_columns, alpha: float) -> pd.DataFrame:
    """Add ``family`` (the family's key as ``column=value`` pairs joined by ';'), ``family_size``, ``p_holm``
    (Holm over the pairs and metrics of each family) and ``significant`` (``p_holm < alpha``)."""
    out = tests.copy()
    out["family"] = ""
    out["family_size"] = 0
    out["p_holm"] = np.nan
    for _, idx in out.groupby(list(family_columns), sort=False).groups.items():
        rows = out.loc[idx]
        out.loc[idx, "family"] = ";".join(f"{c}={rows[c].iloc[0]}" for c in family_columns)
        out.loc[idx, "family_size"] = len(idx)
        out.loc[idx, "p_holm"] = holm(rows["p_value"].to_numpy(float))
    out["family_size"] = out["family_size"].astype(int)
    out["significant"] = out["p_holm"] < float(alpha)
    out["alpha"] = float(alpha)
    return out
