"""Rank stability under the paired case bootstrap: how often each model holds each rank.

The resampled statistics are the bootstrap's (``bootstrap.ratio_statistics`` on the one weight matrix of a
data set: every model, stratum and metric from two matrix products), so no loop runs per resample. In each
resample the models are ranked by the aggregate value (better first: higher for Dice, IoU, contour F1, NSD,
recall; lower for HD95, ASD, FP per case). Values equal to 10 decimals tie (the rule of ``ranking``); k models
tied for ranks r..r+k-1 share them: each holds every one of those ranks with weight 1/k. So identical models
split their ranks evenly, and the shares of one model over all ranks, and of all models at one rank, sum to 1.

A resample in which a stratum holds no lesion has no value and is left out (``n_valid_resamples``).
``observed_rank`` is the model's rank on all test cases, by ``ranking.order_models``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .ranking import TIE_DECIMALS, order_models, ranks


def rank_shares(samples: np.ndarray, higher_is_better) -> tuple[np.ndarray, np.ndarray]:
    """Share of resamples in which each model holds each rank.

    samples: (B, n_models, n_keys) resampled statistics; higher_is_better: (n_keys,) booleans.
    Returns shares (n_models, n_ranks = n_models, n_keys), rank 1 first, and n_valid (n_keys,): the resamples
    in which every model has a value. Keys without a valid resample get NaN shares.
    """
    _, m, k = samples.shape
    sign = np.where(np.asarray(higher_is_better, bool), 1.0, -1.0)
    score = np.round(samples * sign[None, None, :], TIE_DECIMALS)  # higher = better
    valid = ~np.isnan(score).any(axis=1)  # (B, K)
    n_valid = valid.sum(axis=0)
    shares = np.zeros((m, m, k))
    for i in range(m):  # models, not resamples
        better = (score > score[:, i : i + 1, :]).sum(axis=1)  # (B, K) strictly better models
        tied = (score == score[:, i : i + 1, :]).sum(axis=1)  # (B, K) incl. model i itself
        for r in range(m):
            holds = (better <= r) & (r < better + tied) & valid
            shares[i, r] = np.where(holds, 1.0 / np.maximum(tied, 1), 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = shares / n_valid[None, None, :]
    shares[:, :, n_valid == 0] = np.nan
    return shares, n_valid


STABILITY_COLUMNS = [
    "dataset",
    "lesion_set",
    "stratum",
    "metric",
    "higher_is_better",
    "model",
    "rank",
    "share",
    "observed_rank",
    "n_valid_resamples",
    "n_resamples",
]


def stability_rows(
    dataset: str, models, keys, observed: np.ndarray, samples: np.ndarray, higher_is_better: dict
) -> pd.DataFrame:
    """One row per key x model x rank of one data set: the share of resamples in which the model holds the
    rank, and its observed rank. keys: (lesion_set, stratum, metric) per key; observed: (n_models, n_keys);
    samples: (B, n_models, n_keys). Keys
    undefined on all cases, or in every resample, give no row."""
    models = list(models)
    hib = np.array([higher_is_better[metric] for _, _, metric in keys])
    shares, n_valid = rank_shares(samples, hib)
    rows = []
    for k, (lesion_set, stratum, metric) in enumerate(keys):
        if np.isnan(observed[:, k]).any() or n_valid[k] == 0:
            continue
        observed_rank = ranks(order_models({m: observed[i, k] for i, m in enumerate(models)}, metric))
        for i, model in enumerate(models):
            for r in range(len(models)):
                rows.append(
                    {
                        "dataset": dataset,
                        "lesion_set": lesion_set,
                        "stratum": stratum,
                        "metric": metric,
                        "higher_is_better": bool(hib[k]),
                        "model": model,
                        "rank": r + 1,
                        "share": float(shares[i, r, k]),
                        "observed_rank": observed_rank[model],
                        "n_valid_resamples": int(n_valid[k]),
                        "n_resamples": int(samples.shape[0]),
                    }
                )
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)
