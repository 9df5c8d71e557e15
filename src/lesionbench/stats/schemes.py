"""Three ranking schemes (challengeR, Wiesenfarth et al. 2021) and their agreement.

For one data set x stratum x lesion set x metric:

- aggregate-then-rank: the models ordered by the aggregate value (the study tables' value: mean over cases,
  or over the lesions of a stratum) with ``ranking.order_models`` (ties to 10 decimals broken by name);
- rank-then-aggregate: on every included case the models are ranked by their per-case value (rank 1 = best,
  ``scipy.stats.rankdata`` with ties averaged), and ordered by their mean rank over the cases (lower first);
- test-then-rank: the number of other models a model beats significantly (Holm-adjusted Wilcoxon test of the
  pair significant and the signed ranks in its favour, ``paired_tests``), more wins first.

Ties in mean rank or in wins are broken by the aggregate-then-rank order, so every scheme is a strict order
and Kendall tau (``ranking.kendall_tau``) between two schemes is always defined; the scores themselves
(``mean_case_rank``, ``significant_wins``) show where ties were (e.g. no significant pair at all gives every
model 0 wins and test-then-rank falls back to the aggregate order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .ranking import kendall_tau, order_models, ranks

SCHEMES = ("aggregate_then_rank", "rank_then_aggregate", "test_then_rank")
SCHEME_PAIRS = tuple((a, b) for i, a in enumerate(SCHEMES) for b in SCHEMES[i + 1 :])


def mean_case_ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Mean over cases of each model's per-case rank (1 = best; tied values share the average rank).

    values: (n_models, n_cases) per-case values of the included cases. Returns (n_models,).
    """
    values = np.asarray(values, float)
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"need per-case values of shape (models, cases >= 1), got {values.shape}")
    if np.isnan(values).any():
        raise ValueError("per-case values hold NaN: pass only the included cases")
    score = -values if higher_is_better else values
    return rankdata(score, method="average", axis=0).mean(axis=1)


def significant_wins(tests: pd.DataFrame, models) -> dict:
    """Per model, the number of pairs it wins with ``significant`` True (``better_model`` = the model)."""
    wins = {m: 0 for m in models}
    sig = tests[tests["significant"].astype(bool)]
    for m, n in sig["better_model"].value_counts().items():
        if m in wins:
            wins[m] = int(n)
    return wins


def scheme_orders(aggregate: dict, mean_rank: dict, wins: dict, metric: str) -> dict:
    """The three strict orders (best first); ties in mean rank or wins broken by the aggregate order."""
    agg = order_models(aggregate, metric)
    agg_rank = ranks(agg)
    return {
        "aggregate_then_rank": agg,
        "rank_then_aggregate": sorted(agg, key=lambda m: (round(float(mean_rank[m]), 10), agg_rank[m])),
        "test_then_rank": sorted(agg, key=lambda m: (-int(wins[m]), agg_rank[m])),
    }


def tau_column(a: str, b: str) -> str:
    return f"tau_{a}_vs_{b}"


SCHEME_COLUMNS = [
    "dataset",
    "lesion_set",
    "stratum",
    "metric",
    "higher_is_better",
    "model",
    "value",
    "rank_aggregate_then_rank",
    "mean_case_rank",
    "rank_rank_then_aggregate",
    "significant_wins",
    "rank_test_then_rank",
    "n_cases",
] + [tau_column(a, b) for a, b in SCHEME_PAIRS]


def scheme_rows(
    dataset: str,
    lesion_set: str,
    stratum: str,
    metric: str,
    higher_is_better: bool,
    aggregate: dict,
    case_values: np.ndarray,
    models,
    tests: pd.DataFrame,
) -> list[dict]:
    """Rows of one data set x lesion set x stratum x metric: every model's scores and ranks under the three schemes and
    the Kendall tau of each pair of schemes (the same on every row of the group).

    aggregate: model -> aggregate value; case_values: (n_models, n_cases) over the included cases, rows in
    ``models`` order; tests: the Holm-adjusted pairwise tests of this data set, stratum and metric.
    """
    models = list(models)
    mean_rank = dict(zip(models, mean_case_ranks(case_values, higher_is_better)))
    wins = significant_wins(tests, models)
    orders = scheme_orders(aggregate, mean_rank, wins, metric)
    rank_of = {s: ranks(o) for s, o in orders.items()}
    taus = {tau_column(a, b): kendall_tau(orders[a], orders[b]) for a, b in SCHEME_PAIRS}
    return [
        {
            "dataset": dataset,
            "lesion_set": lesion_set,
            "stratum": stratum,
            "metric": metric,
            "higher_is_better": higher_is_better,
            "model": m,
            "value": float(aggregate[m]),
            "rank_aggregate_then_rank": rank_of["aggregate_then_rank"][m],
            "mean_case_rank": float(mean_rank[m]),
            "rank_rank_then_aggregate": rank_of["rank_then_aggregate"][m],
            "significant_wins": int(wins[m]),
            "rank_test_then_rank": rank_of["test_then_rank"][m],
            "n_cases": int(case_values.shape[1]),
            **taus,
        }
        for m in orders["aggregate_then_rank"]
    ]
