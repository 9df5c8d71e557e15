"""The study tables built from per-case sums without resampling: size-stratified metrics, the small-lesion
(Q1) table, and the point estimates the rankings and the overall table use.

Seeds: each value is the mean over seeds of the per-seed statistic, and ``seed_sd`` is the standard deviation
of the per-seed statistics (ddof=1; 0.0 with one seed), so a gap between models can be read against seed
noise. Undefined cells are never written: a stratum without reference lesions has no lesion-metric or recall
row (its ``fp_per_case`` row remains, since it is counted per case).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .strata import KEYS, CaseSums, point_statistics, pool
from .tables import HIGHER_IS_BETTER, POOLED, QUARTILES, sort_rows

ESTIMATE_COLUMNS = ["dataset", "model", "stratum", "metric", "higher_is_better", "value", "seed_sd", "n_seeds",
                    "n_lesions", "n_cases", "size_low", "size_high"]
STRATIFIED_COLUMNS = ["dataset", "model", "quartile", "metric", "higher_is_better", "value", "seed_sd", "n_seeds",
                      "n_lesions", "n_cases", "size_low", "size_high"]
SMALL_COLUMNS = ["dataset", "model", "metric", "higher_is_better", "value", "seed_sd", "n_seeds", "n_lesions",
                 "n_cases", "size_low", "q1_upper_bound"]


def point_estimates(sums: CaseSums) -> pd.DataFrame:
    """Seed-averaged value and seed spread of every defined (model, stratum, metric) of one data set."""
    per_seed = np.stack([point_statistics(sums.num[:, s], sums.den) for s in range(len(sums.seeds))], axis=1)
    value = point_statistics(sums.seed_mean(), sums.den)            # (M, K)
    n_seeds = len(sums.seeds)
    spread = per_seed.std(axis=1, ddof=1) if n_seeds > 1 else np.zeros_like(value)
    rows = []
    for mi, model in enumerate(sums.models):
        for k, (stratum, metric) in enumerate(KEYS):
            if np.isnan(value[mi, k]):
                continue
            rows.append({
                "dataset": sums.dataset, "model": model, "stratum": stratum, "metric": metric,
                "higher_is_better": HIGHER_IS_BETTER[metric], "value": float(value[mi, k]),
                "seed_sd": float(spread[mi, k]), "n_seeds": n_seeds, "n_lesions": sums.n_lesions(stratum),
                "n_cases": sums.n_cases, "size_low": float(sums.edges[stratum][0]),
                "size_high": float(sums.edges[stratum][1]),
            })
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)


def all_estimates(sums_by_dataset: dict, pooled: bool = True) -> pd.DataFrame:
    """Point estimates of every data set, and of all data sets pooled as data set ``pooled``."""
    sums = [sums_by_dataset[d] for d in sorted(sums_by_dataset)]
    frames = [point_estimates(s) for s in sums]
    if pooled:
        frames.append(point_estimates(pool(sums)))
    return sort_rows(pd.concat(frames, ignore_index=True), ["dataset", "model", "stratum", "metric"])


def size_stratified_metrics(sums_by_dataset: dict) -> pd.DataFrame:
    """Data set (and ``pooled``) x model x quartile x metric over the reference lesions of the quartile."""
    est = all_estimates(sums_by_dataset)
    est = est[est["stratum"].isin(QUARTILES)].rename(columns={"stratum": "quartile"})
    return sort_rows(est[STRATIFIED_COLUMNS], ["dataset", "model", "quartile", "metric"])


def small_lesion_metrics(stratified: pd.DataFrame) -> pd.DataFrame:
    """The Q1 rows of the size-stratified table; ``q1_upper_bound`` is the largest size fraction of Q1."""
    q1 = stratified[stratified["quartile"] == "Q1"].rename(columns={"size_high": "q1_upper_bound"})
    return q1[SMALL_COLUMNS].reset_index(drop=True)


def ranking_estimates(sums_by_dataset: dict) -> pd.DataFrame:
    """Point estimates the rankings are computed on (every data set and ``pooled``, every stratum)."""
    return all_estimates(sums_by_dataset)


__all__ = ["point_estimates", "all_estimates", "size_stratified_metrics", "small_lesion_metrics",
           "ranking_estimates", "POOLED"]
