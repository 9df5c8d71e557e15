"""The overall table: data set x model x metric over all test cases (case-level metrics, and recall and FP
per case over every reference lesion: lesion set ``all``), with percentile bootstrap CIs from the paired case
bootstrap (the same resamples as the pairwise robustness table)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .aggregate import point_estimates
from .bootstrap import percentile_ci, resample_dataset
from .strata import ALL, KEY_INDEX
from .tables import METRICS
from .tables import sort_rows

OVERALL_COLUMNS = ["dataset", "model", "metric", "higher_is_better", "value", "ci_low", "ci_high", "seed_sd",
                   "n_seeds", "n_cases", "n_lesions", "n_resamples", "ci_level"]


def overall_metrics(sums_by_dataset: dict, resamples: int, bootstrap_seed: int, confidence: float) -> pd.DataFrame:
    """Data set x model x metric over all test cases, with percentile bootstrap CIs (cases resampled)."""
    rows = []
    for dataset in sorted(sums_by_dataset):
        sums = sums_by_dataset[dataset]
        est = point_estimates(sums)
        est = est[(est["lesion_set"] == ALL) & (est["stratum"] == "overall")]
        keys = np.array([KEY_INDEX[(ALL, "overall", m)] for m in METRICS])   # this table's statistics only
        _, samples = resample_dataset(sums, resamples, bootstrap_seed, keys)
        low, high, _ = percentile_ci(samples, confidence)          # (M, len(METRICS))
        models = list(sums.models)
        for r in est.itertuples(index=False):
            k = METRICS.index(str(r.metric))
            m = models.index(r.model)
            rows.append({
                "dataset": dataset, "model": r.model, "metric": r.metric, "higher_is_better": r.higher_is_better,
                "value": r.value, "ci_low": float(low[m, k]), "ci_high": float(high[m, k]), "seed_sd": r.seed_sd,
                "n_seeds": r.n_seeds, "n_cases": r.n_cases, "n_lesions": r.n_lesions,
                "n_resamples": int(resamples), "ci_level": float(confidence),
            })
    return sort_rows(pd.DataFrame(rows, columns=OVERALL_COLUMNS), ["dataset", "model", "metric"])
