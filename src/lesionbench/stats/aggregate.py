"""The study tables built from per-case sums without resampling: size-stratified metrics, the small-lesion
(Q1) table, and the point estimates the rankings, the overall table and the study summary use.

Every row names its lesion set (``all``, ``detected``, ``common``; see ``strata``). Seeds: each value is the
mean over seeds of the per-seed statistic, and ``seed_sd`` is the standard deviation of the per-seed
statistics (ddof=1; 0.0 with one seed), so a gap between models can be read against seed noise.

Lesion counts: ``n_lesions`` is the number of reference lesions a lesion-level value is a mean over (for
``detected`` it differs by model; with several seeds it is the smallest per-seed count). A lesion-level row
(quartile metrics, lesion recall) with ``n_lesions < min_lesions`` is flagged ``insufficient_lesions``; a
stratum holding no lesion of its set keeps its row, with ``n_lesions`` 0, the flag set and an empty
``value`` and ``seed_sd`` (the only cells ever left empty). Case-level rows (stratum ``overall``) and the
per-case ``fp_per_case`` are never flagged.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .strata import ALL, KEYS, CaseSums, point_statistics, pool, seed_average
from .tables import HIGHER_IS_BETTER, QUARTILES, sort_rows

DEFAULT_MIN_LESIONS = 10  # tests and library callers only; the workflow passes claim.min_lesions (schema)

ESTIMATE_COLUMNS = [
    "dataset",
    "model",
    "lesion_set",
    "stratum",
    "metric",
    "higher_is_better",
    "value",
    "seed_sd",
    "n_seeds",
    "n_lesions",
    "insufficient_lesions",
    "n_cases",
    "size_bins",
    "size_low",
    "size_high",
]
# The stratified table names its stratum `quartile`; the small-lesion table (Q1 rows only) drops it and ends
# with the Q1 upper bound instead of the upper edge.
STRATIFIED_COLUMNS = ["quartile" if c == "stratum" else c for c in ESTIMATE_COLUMNS]
SMALL_COLUMNS = [c for c in ESTIMATE_COLUMNS if c not in ("stratum", "size_high")] + ["q1_upper_bound"]
# Columns that may be empty, and only in rows with n_lesions == 0.
OPTIONAL_COLUMNS = ("value", "seed_sd")
SORT_KEYS = ["dataset", "model", "lesion_set", "stratum", "metric"]


def is_lesion_level(stratum: str, metric: str) -> bool:
    """Whether a value is a mean over reference lesions (the rows that carry a lesion count and flag)."""
    return metric != "fp_per_case" and (stratum != "overall" or metric == "lesion_recall")


def seed_values(sums: CaseSums) -> np.ndarray:
    """Per-seed statistics of every key: (n_models, n_seeds, n_keys)."""
    return point_statistics(sums.num, sums.den)


def point_estimates(sums: CaseSums, min_lesions: int = DEFAULT_MIN_LESIONS) -> pd.DataFrame:
    """Seed-averaged value, seed spread and lesion count of every (model, lesion set, stratum, metric) of
    one data set, in one pass over its per-case sums."""
    per_seed = seed_values(sums)  # (M, S, K)
    value = seed_average(per_seed, seed_axis=1)  # (M, K)
    n_seeds = len(sums.seeds)
    defined = (~np.isnan(per_seed)).sum(axis=1)
    spread = np.zeros_like(value)
    if n_seeds > 1:
        with warnings.catch_warnings():  # fewer than two defined seeds: handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.where(defined > 1, np.nanstd(per_seed, axis=1, ddof=1), 0.0)
    spread[np.isnan(value)] = np.nan
    counts = {}
    rows = []
    for k, (lesion_set, stratum, metric) in enumerate(KEYS):
        lesion_level = is_lesion_level(stratum, metric)
        if (lesion_set, stratum) not in counts:
            # case-level rows of set `all` carry the reference lesion count of the data set
            counts[(lesion_set, stratum)] = sums.lesion_counts(lesion_set, stratum).min(axis=1)
        for mi, model in enumerate(sums.models):
            n_les = int(counts[(lesion_set, stratum)][mi])
            if np.isnan(value[mi, k]) and not (lesion_level and n_les == 0):
                raise AssertionError(
                    f"{sums.dataset} {model} {lesion_set} {stratum} {metric}: undefined value with {n_les} lesions"
                )
            rows.append(
                {
                    "dataset": sums.dataset,
                    "model": model,
                    "lesion_set": lesion_set,
                    "stratum": stratum,
                    "metric": metric,
                    "higher_is_better": HIGHER_IS_BETTER[metric],
                    "value": float(value[mi, k]),
                    "seed_sd": float(spread[mi, k]),
                    "n_seeds": n_seeds,
                    "n_lesions": n_les,
                    "insufficient_lesions": bool(lesion_level and n_les < min_lesions),
                    "n_cases": sums.n_cases,
                    "size_bins": sums.edge_rule,
                    "size_low": float(sums.edges[stratum][0]),
                    "size_high": float(sums.edges[stratum][1]),
                }
            )
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)


def all_estimates(sums_by_dataset: dict, min_lesions: int = DEFAULT_MIN_LESIONS, pooled: bool = True) -> pd.DataFrame:
    """Point estimates of every data set, and with ``pooled`` and more than one data set, of all data sets
    pooled as data set ``pooled`` (one data set pooled would only repeat its rows)."""
    sums = [sums_by_dataset[d] for d in sorted(sums_by_dataset)]
    frames = [point_estimates(s, min_lesions) for s in sums]
    if pooled and len(sums) > 1:
        frames.append(point_estimates(pool(sums), min_lesions))
    return sort_rows(pd.concat(frames, ignore_index=True), SORT_KEYS)


def size_stratified_metrics(
    sums_by_dataset: dict, min_lesions: int = DEFAULT_MIN_LESIONS, estimates: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Data set (and ``pooled``) x model x lesion set x quartile x metric over the reference lesions of the
    quartile in the set. ``estimates``: the output of ``all_estimates`` when already computed."""
    est = all_estimates(sums_by_dataset, min_lesions) if estimates is None else estimates
    est = est[est["stratum"].isin(QUARTILES)].rename(columns={"stratum": "quartile"})
    return sort_rows(est[STRATIFIED_COLUMNS], ["dataset", "model", "lesion_set", "quartile", "metric"])


def small_lesion_metrics(stratified: pd.DataFrame) -> pd.DataFrame:
    """The Q1 rows of the size-stratified table; ``q1_upper_bound`` is the largest size fraction of Q1."""
    q1 = stratified[stratified["quartile"] == "Q1"].rename(columns={"size_high": "q1_upper_bound"})
    return q1[SMALL_COLUMNS].reset_index(drop=True)


def ranking_estimates(sums_by_dataset: dict, min_lesions: int = DEFAULT_MIN_LESIONS) -> pd.DataFrame:
    """Point estimates the rankings are computed on (every data set and ``pooled``, every stratum, the
    lesion sets that are the same for every model: ``all`` and ``common``)."""
    est = all_estimates(sums_by_dataset, min_lesions)
    return est[est["lesion_set"].isin((ALL, "common"))].reset_index(drop=True)


__all__ = [
    "all_estimates",
    "is_lesion_level",
    "point_estimates",
    "ranking_estimates",
    "seed_values",
    "size_stratified_metrics",
    "small_lesion_metrics",
]
