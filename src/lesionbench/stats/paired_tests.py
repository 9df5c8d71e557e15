"""Paired tests between models on per-case values: Wilcoxon signed-rank, Holm correction, and the median
paired difference with its bootstrap interval.

Per-case values come from the per-case sums (``strata``): the value of case c under key k is
``num[c, k] / den[c, k]``, defined where ``den[c, k] > 0``. For a case-level metric over all cases that is the
case's metric; for a size stratum it is the mean of the metric over the case's lesions in the stratum (the
"per-case lesion mean"); for lesion recall the case's share of detected lesions. Cases whose denominator is 0
(no lesion of the stratum) are left out of the test and counted (``n_cases_left_out``). Seeds: numerators are
averaged over seeds first, so a model's per-case value is its seed mean.

- Test: ``scipy.stats.wilcoxon(value_a, value_b)`` with scipy's defaults (two-sided, ``zero_method='wilcox'``:
  zero differences are dropped; ``method='auto'``). Every p-value is scipy's; nothing is re-implemented. The
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
from scipy.stats import wilcoxon


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


def wilcoxon_pair(a: np.ndarray, b: np.ndarray) -> dict:
    """scipy's two-sided Wilcoxon signed-rank test of paired values, and the signed-rank sums of each side.

    All differences zero: scipy returns statistic 0 and p = 1 (no evidence either way); both rank sums are 0.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a - b
    nonzero = int(np.count_nonzero(d))
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)   # scipy warns on all-zero differences
        two = wilcoxon(a, b)
        rank_sum_a = float(wilcoxon(a, b, alternative="greater").statistic) if nonzero else 0.0
    return {"statistic": float(two.statistic), "p_value": float(two.pvalue), "n_nonzero": nonzero,
            "rank_sum_a": rank_sum_a, "rank_sum_b": nonzero * (nonzero + 1) / 2.0 - rank_sum_a}


def weighted_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Median of each resample, where resample b holds ``values[j]`` ``weights[b, j]`` times.

    values: (..., n); weights: (B, n) non-negative integer counts. Returns (B, ...): for each resample the
    numpy median of the expanded multiset (mean of the two middle elements when its size is even), NaN when
    the resample holds no value.
    """
    values = np.asarray(values, float)
    lead = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1])                # (G, n)
    order = np.argsort(flat, axis=1, kind="stable")
    sorted_vals = np.take_along_axis(flat, order, axis=1)      # (G, n)
    counts = np.asarray(weights, float)[:, order]              # (B, G, n)
    cum = np.cumsum(counts, axis=2)
    total = cum[:, :, -1] if flat.shape[1] else np.zeros(cum.shape[:2])
    lo = np.floor((total - 1) / 2.0)
    hi = np.floor(total / 2.0)
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
    samples = weighted_medians(diffs, weights)                 # (B, G)
    low, high, n_valid = percentile_ci(samples, confidence)
    return observed, low, high, n_valid


TEST_COLUMNS = ["dataset", "stratum", "metric", "higher_is_better", "model_a", "model_b", "n_cases",
                "n_cases_left_out", "n_nonzero", "median_difference", "ci_low", "ci_high", "n_valid_resamples",
                "statistic", "rank_sum_a", "rank_sum_b", "better_model", "p_value"]

# Cells per chunk of the weighted-median computation: B x cells x cases stays near this many numbers.
_MEDIAN_CHUNK = 4_000_000


def pairwise_tests(dataset: str, models, keys, num: np.ndarray, den: np.ndarray, weights: np.ndarray,
                   confidence: float, higher_is_better: dict, pairs) -> "pd.DataFrame":
    """Wilcoxon test and median paired difference of every model pair x key of one data set (one lesion set).

    models: names along axis 0 of ``num`` (n_models, n_cases, n_keys, seed-averaged numerators); den:
    (n_cases, n_keys); keys: (stratum, metric) per key; weights: (B, n_cases) bootstrap counts; pairs:
    [(model_a, model_b)] with differences taken as a - b. Keys without any included case give no row.
    ``better_model`` is the side with the larger signed-rank sum, accounting for the metric's direction
    ("tie" when the sums are equal); Holm adjustment is applied afterwards over families (``holm_families``).
    """
    import pandas as pd

    models = list(models)
    values, included = per_case_values(num, den)
    ia = np.array([models.index(a) for a, _ in pairs], np.int64)
    ib = np.array([models.index(b) for _, b in pairs], np.int64)
    rows = []
    for k, (stratum, metric) in enumerate(keys):
        inc = included[:, k]
        n_inc = int(inc.sum())
        if n_inc == 0 or not len(pairs):
            continue
        diffs = values[ia][:, inc, k] - values[ib][:, inc, k]        # (P, n_inc)
        w = weights[:, inc]
        step = max(1, _MEDIAN_CHUNK // max(1, w.shape[0] * n_inc))
        parts = [median_difference_ci(diffs[s:s + step], w, confidence) for s in range(0, len(pairs), step)]
        med, low, high, n_valid = (np.concatenate(x) for x in zip(*parts))
        for p, (a, b) in enumerate(pairs):
            t = wilcoxon_pair(values[ia[p], inc, k], values[ib[p], inc, k])
            if t["rank_sum_a"] == t["rank_sum_b"]:
                better = "tie"
            else:
                better = a if (t["rank_sum_a"] > t["rank_sum_b"]) == higher_is_better[metric] else b
            rows.append({
                "dataset": dataset, "stratum": stratum, "metric": metric,
                "higher_is_better": higher_is_better[metric], "model_a": a, "model_b": b, "n_cases": n_inc,
                "n_cases_left_out": int(len(inc) - n_inc), "n_nonzero": t["n_nonzero"],
                "median_difference": float(med[p]), "ci_low": float(low[p]), "ci_high": float(high[p]),
                "n_valid_resamples": int(n_valid[p]), "statistic": t["statistic"],
                "rank_sum_a": t["rank_sum_a"], "rank_sum_b": t["rank_sum_b"], "better_model": better,
                "p_value": t["p_value"],
            })
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def holm_families(tests: "pd.DataFrame", family_columns, alpha: float) -> "pd.DataFrame":
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
