"""The overall table: data set x model x metric over all test cases (case-level metrics, and recall and FP
per case over every reference lesion: lesion set ``all``), with percentile bootstrap CIs from the paired case
bootstrap (the same resamples as the pairwise robustness table). With the merged-lesion sums (``merged``) it
also holds ``lesion_recall_merged``, the recall counted per merged (BraTS) lesion, whose ``n_lesions`` is the
number of merged lesions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .aggregate import point_estimates
from .bootstrap import case_weights, dataset_rng, percentile_ci, resample_dataset, weight_matrix
from .merged import MERGED_RECALL, merged_recall_samples
from .strata import ALL, KEY_INDEX
from .tables import METRICS, sort_rows

OVERALL_COLUMNS = [
    "dataset",
    "model",
    "metric",
    "higher_is_better",
    "value",
    "ci_low",
    "ci_high",
    "seed_sd",
    "n_seeds",
    "n_cases",
    "n_lesions",
    "n_resamples",
    "ci_level",
]


def overall_metrics(
    sums_by_dataset: dict, resamples: int, bootstrap_seed: int, confidence: float, merged: dict | None = None
) -> pd.DataFrame:
    """Data set x model x metric over all test cases, with percentile bootstrap CIs (cases resampled).
    ``merged``: {dataset: merged.MergedRecallSums} adds the ``lesion_recall_merged`` rows."""
    rows = []
    for dataset in sorted(sums_by_dataset):
        sums = sums_by_dataset[dataset]
        est = point_estimates(sums)
        est = est[(est["lesion_set"] == ALL) & (est["stratum"] == "overall")]
        keys = np.array([KEY_INDEX[(ALL, "overall", m)] for m in METRICS])  # this table's statistics only
        _, samples = resample_dataset(sums, case_weights(sums, resamples, bootstrap_seed), keys)
        low, high, _ = percentile_ci(samples, confidence)  # (M, len(METRICS))
        models = list(sums.models)
        for r in est.itertuples(index=False):
            k = METRICS.index(str(r.metric))
            m = models.index(r.model)
            rows.append(
                {
                    "dataset": dataset,
                    "model": r.model,
                    "metric": r.metric,
                    "higher_is_better": r.higher_is_better,
                    "value": r.value,
                    "ci_low": float(low[m, k]),
                    "ci_high": float(high[m, k]),
                    "seed_sd": r.seed_sd,
                    "n_seeds": r.n_seeds,
                    "n_cases": r.n_cases,
                    "n_lesions": r.n_lesions,
                    "n_resamples": int(resamples),
                    "ci_level": float(confidence),
                }
            )
        if merged is not None and merged[dataset].den.sum() > 0:
            rows += _merged_rows(merged[dataset], sums.n_cases, resamples, bootstrap_seed, confidence)
    return sort_rows(pd.DataFrame(rows, columns=OVERALL_COLUMNS), ["dataset", "model", "metric"])


def _merged_rows(m, n_cases: int, resamples: int, bootstrap_seed: int, confidence: float) -> list[dict]:
    from .strata import point_statistics

    weights = weight_matrix(n_cases, resamples, dataset_rng(bootstrap_seed, m.dataset))  # the same resamples
    observed, samples = merged_recall_samples(m, weights)
    low, high, _ = percentile_ci(samples, confidence)
    per_seed = point_statistics(m.num[..., None], np.broadcast_to(m.den[None, None, :, None], m.num.shape + (1,)))[
        ..., 0
    ]  # (M, S)
    spread = per_seed.std(axis=1, ddof=1) if len(m.seeds) > 1 else np.zeros(len(m.models))
    return [
        {
            "dataset": m.dataset,
            "model": model,
            "metric": MERGED_RECALL,
            "higher_is_better": True,
            "value": float(observed[i]),
            "ci_low": float(low[i]),
            "ci_high": float(high[i]),
            "seed_sd": float(spread[i]),
            "n_seeds": len(m.seeds),
            "n_cases": n_cases,
            "n_lesions": round(m.den.sum()),
            "n_resamples": int(resamples),
            "ci_level": float(confidence),
        }
        for i, model in enumerate(m.models)
    ]
