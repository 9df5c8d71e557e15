"""Model orders under each metric and the reversals between Dice and the boundary metrics.

Order rule: better value first (higher for Dice, IoU, contour F1, NSD, recall; lower for HD95, ASD and FP per
case). Values equal to 10 decimal places are ties, broken by model name (alphabetical), so every order is a
strict, reproducible ranking. Kendall tau compares two such rankings (scipy.stats.kendalltau; with strict
rankings tau-b equals tau-a); with fewer than two models it is defined as 1.0 (nothing can reverse).
"""

from __future__ import annotations

import logging

import pandas as pd

from .tables import BOUNDARY_METRICS, HIGHER_IS_BETTER, LESION_SETS, POOLED, STRATA, sort_rows

log = logging.getLogger("lesionbench")

TIE_DECIMALS = 10
ORDER_SEPARATOR = " > "


def order_models(values: dict, metric: str) -> list[str]:
    """Models best first under ``metric``; ties (equal to TIE_DECIMALS places) broken by model name."""
    sign = -1.0 if HIGHER_IS_BETTER[metric] else 1.0
    return sorted(values, key=lambda m: (sign * round(float(values[m]), TIE_DECIMALS) + 0.0, m))


def ranks(order: list[str]) -> dict:
    """1-based rank of each model in an order."""
    return {m: i + 1 for i, m in enumerate(order)}


def kendall_tau(order_a: list[str], order_b: list[str]) -> float:
    """Kendall tau between two strict orders of the same models (1.0 = same order, -1.0 = reversed)."""
    if sorted(order_a) != sorted(order_b):
        raise ValueError(f"orders rank different models: {order_a} vs {order_b}")
    if len(order_a) < 2:
        return 1.0
    ra, rb = ranks(order_a), ranks(order_b)
    models = sorted(order_a)
    from scipy.stats import kendalltau  # imported here: most statistics jobs never rank (a 0.4 s import)

    tau = kendalltau([ra[m] for m in models], [rb[m] for m in models]).statistic
    return float(tau)


REVERSAL_COLUMNS = [
    "dataset",
    "lesion_set",
    "stratum",
    "metric",
    "n_models",
    "n_lesions",
    "insufficient_lesions",
    "dice_order",
    "metric_order",
    "order_changed",
    "dice_leader",
    "metric_leader",
    "leader_changed",
    "dice_leader_rank",
    "kendall_tau",
    "dice_spread",
    "metric_spread",
    "size_bins",
    "size_low",
    "size_high",
]
SUMMARY_COLUMNS = [
    "lesion_set",
    "stratum",
    "metric",
    "n_datasets",
    "n_insufficient",
    "n_leader_changed",
    "share_leader_changed",
    "n_order_changed",
    "share_order_changed",
    "mean_kendall_tau",
    "datasets_leader_changed",
]


def ranking_reversals(estimates: pd.DataFrame) -> pd.DataFrame:
    """One row per data set x lesion set x stratum x boundary metric comparing the model order under Dice
    (of the same lesions) with it.

    ``estimates``: point estimates with columns dataset, model, lesion_set, stratum, metric, value, n_lesions,
    insufficient_lesions, size_bins, size_low, size_high (every model of a data set present for each lesion set,
    stratum and metric). Use the lesion sets that are the same for every model (``all``, ``common``). A stratum
    with no lesion of its set has no value and no order: it has no row (its count is in the size-stratified table).
    """
    rows = []
    for (dataset, lesion_set, stratum), group in estimates.groupby(["dataset", "lesion_set", "stratum"], sort=False):
        if group["value"].isna().any():
            log.info("%s %s %s: no lesion of the set, no ranking", dataset, lesion_set, stratum)
            continue
        table = group.pivot(index="model", columns="metric", values="value")
        if "dice" not in table:
            continue
        dice_row = group[group["metric"] == "dice"]
        dice_values = table["dice"].to_dict()
        dice_order = order_models(dice_values, "dice")
        leader = dice_order[0]
        for metric in BOUNDARY_METRICS:
            if metric not in table:
                continue
            values = table[metric].to_dict()
            order = order_models(values, metric)
            rows.append(
                {
                    "dataset": dataset,
                    "lesion_set": lesion_set,
                    "stratum": stratum,
                    "metric": metric,
                    "n_models": len(order),
                    "n_lesions": int(dice_row["n_lesions"].max()),
                    "insufficient_lesions": bool(dice_row["insufficient_lesions"].any()),
                    "dice_order": ORDER_SEPARATOR.join(dice_order),
                    "metric_order": ORDER_SEPARATOR.join(order),
                    "order_changed": order != dice_order,
                    "dice_leader": leader,
                    "metric_leader": order[0],
                    "leader_changed": order[0] != leader,
                    "dice_leader_rank": ranks(order)[leader],
                    "kendall_tau": kendall_tau(dice_order, order),
                    "dice_spread": float(max(dice_values.values()) - min(dice_values.values())),
                    "metric_spread": float(max(values.values()) - min(values.values())),
                    "size_bins": dice_row["size_bins"].iloc[0],
                    "size_low": float(dice_row["size_low"].iloc[0]),
                    "size_high": float(dice_row["size_high"].iloc[0]),
                }
            )
    out = pd.DataFrame(rows, columns=REVERSAL_COLUMNS)
    return sort_rows(out, ["dataset", "lesion_set", "stratum", "metric"])


def reversal_summary(reversals: pd.DataFrame) -> pd.DataFrame:
    """How often the Dice leader is not the leader of a boundary metric, over the data sets (pooled excluded).

    One row per lesion set x stratum x metric, plus metric ``any`` per lesion set and stratum: the Dice leader
    loses the lead under at least one boundary metric. ``n_insufficient``: data sets whose stratum holds fewer
    lesions of the set than the minimum (their reversals are counted, and flagged here).
    """
    per = reversals[reversals["dataset"] != POOLED]
    rows = []
    for lesion_set in LESION_SETS:
        for stratum in STRATA:
            s = per[(per["lesion_set"] == lesion_set) & (per["stratum"] == stratum)]
            if s.empty:
                continue
            for metric in BOUNDARY_METRICS + ("any",):
                if metric == "any":
                    g = (
                        s.groupby("dataset", sort=True)
                        .agg(
                            leader_changed=("leader_changed", "any"),
                            order_changed=("order_changed", "any"),
                            kendall_tau=("kendall_tau", "min"),
                            insufficient_lesions=("insufficient_lesions", "any"),
                        )
                        .reset_index()
                    )
                else:
                    g = s[s["metric"] == metric]
                if g.empty:
                    continue
                n = len(g)
                changed = sorted(g.loc[g["leader_changed"], "dataset"])
                rows.append(
                    {
                        "lesion_set": lesion_set,
                        "stratum": stratum,
                        "metric": metric,
                        "n_datasets": n,
                        "n_insufficient": int(g["insufficient_lesions"].sum()),
                        "n_leader_changed": len(changed),
                        "share_leader_changed": len(changed) / n,
                        "n_order_changed": int(g["order_changed"].sum()),
                        "share_order_changed": float(g["order_changed"].mean()),
                        "mean_kendall_tau": float(g["kendall_tau"].mean()),
                        "datasets_leader_changed": ";".join(changed) if changed else "none",
                    }
                )
    return sort_rows(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), ["lesion_set", "stratum", "metric"])
