"""The study's headline tables, computed from the point estimates: the study summary and the data-set table.

Study summary (``results/study_summary.csv``), one row per data set (and ``pooled``) x setting x lesion set:

- settings: ``all_cases`` (case-level metrics over every test case, lesion recall over every reference
  lesion; lesion set ``all`` only), ``Q4`` and ``Q1`` (lesion-level means over the quartile's lesions of each
  lesion set, recall over all its lesions);
- ``top_models``: the ``top_k`` models by overall (all-cases) Dice, best first, joined by " > "; every other
  column is about these models;
- ``dice_spread``: max - min of their Dice in the setting (absolute); ``dice_seed_sd``: the largest seed SD of
  their Dice in the setting (0 with one seed);
- ``hd95_spread_pct``, ``asd_spread_pct``: relative spread (max - min) / min x 100 (``inf`` if the best is 0
  and another is not; 0 if all are 0);
- ``contour_f1_spread``: max - min (absolute); ``recall_spread_pp``: max - min of lesion recall (set ``all``)
  in percentage points;
- ``<metric>_agrees_with_dice`` (HD95, ASD, contour F1): whether the top models' order under the metric in
  this setting equals their order under overall Dice (ties broken as in ``ranking.order_models``);
  ``mean_kendall_tau``: mean over the three boundary metrics of Kendall tau between those orders;
  ``dice_leader_hd95_rank``: the rank (1 = best) the overall-Dice leader gets among the top models under HD95;
- ``n_lesions`` (smallest over the top models for ``detected``), ``insufficient_lesions``.

A setting whose lesion set holds no lesion keeps its row with n_lesions 0 and the metric columns empty.

Data-set table (``results/study_datasets.csv``): test cases, annotated (evaluated) test lesions, Q1 lesions,
``common`` Q1 lesions, and the empirical Q1 upper bound (q25 of the test-lesion size fractions) in % of the
image; the ``pooled`` row sums the counts and takes q25 of all data sets' sizes together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .ranking import ORDER_SEPARATOR, kendall_tau, order_models, ranks
from .strata import ALL, COMMON, LESION_SETS, CaseSums
from .tables import BOUNDARY_METRICS, POOLED, DatasetTables, sort_rows

SETTINGS = {"all_cases": "overall", "Q4": "Q4", "Q1": "Q1"}
SUMMARY_COLUMNS = ["dataset", "setting", "lesion_set", "top_models", "n_models", "n_seeds", "n_lesions",
                   "insufficient_lesions", "dice_spread", "dice_seed_sd", "hd95_spread_pct", "asd_spread_pct",
                   "contour_f1_spread", "recall_spread_pp", "hd95_agrees_with_dice", "asd_agrees_with_dice",
                   "contour_f1_agrees_with_dice", "mean_kendall_tau", "dice_leader_hd95_rank"]
# Cells left empty in a row whose lesion set holds no lesion of the setting.
SUMMARY_OPTIONAL = SUMMARY_COLUMNS[SUMMARY_COLUMNS.index("dice_spread"):]
DATASET_COLUMNS = ["dataset", "n_test_cases", "n_test_lesions", "n_q1_lesions", "n_common_q1_lesions",
                   "q1_upper_bound_pct"]


def relative_spread_pct(values) -> float:
    """(max - min) / min x 100 of non-negative values; 0 if all are 0, inf if only the smallest is 0."""
    v = np.asarray(values, float)
    low, high = v.min(), v.max()
    if high == low:
        return 0.0
    return float("inf") if low == 0 else float((high - low) / low * 100.0)


def top_models(estimates: pd.DataFrame, dataset: str, top_k: int) -> list[str]:
    """The ``top_k`` models of a data set by overall Dice (set ``all``), best first."""
    d = estimates[(estimates.dataset == dataset) & (estimates.lesion_set == ALL)
                  & (estimates.stratum == "overall") & (estimates.metric == "dice")]
    return order_models(dict(zip(d.model, d.value)), "dice")[:top_k]


def _index(estimates: pd.DataFrame) -> dict:
    """{(dataset, lesion_set, stratum, metric): rows indexed by model}: one grouping, then lookups."""
    return {key: g.set_index("model") for key, g in
            estimates.groupby(["dataset", "lesion_set", "stratum", "metric"], sort=False)}


def _values(index: dict, dataset, lesion_set, stratum, metric, models) -> dict:
    d = index[(dataset, lesion_set, stratum, metric)]
    return {m: d.loc[m] for m in models}


def study_summary(estimates: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """The study summary from ``aggregate.all_estimates`` (every data set and ``pooled``)."""
    rows = []
    index = _index(estimates)
    for dataset in estimates["dataset"].unique():
        top = top_models(estimates, dataset, top_k)
        n_models = int(estimates.loc[estimates.dataset == dataset, "model"].nunique())
        for setting, stratum in SETTINGS.items():
            for lesion_set in ((ALL,) if stratum == "overall" else LESION_SETS):
                dice = _values(index, dataset, lesion_set, stratum, "dice", top)
                recall = _values(index, dataset, ALL, stratum, "lesion_recall", top)
                if stratum == "overall":
                    n_les, insufficient = int(recall[top[0]].n_lesions), False
                else:
                    n_les = int(min(r.n_lesions for r in dice.values()))
                    insufficient = bool(any(r.insufficient_lesions for r in dice.values()))
                row = {"dataset": dataset, "setting": setting, "lesion_set": lesion_set,
                       "top_models": ORDER_SEPARATOR.join(top), "n_models": n_models,
                       "n_seeds": int(dice[top[0]].n_seeds), "n_lesions": n_les,
                       "insufficient_lesions": insufficient}
                if any(np.isnan(r.value) for r in dice.values()):
                    rows.append(row)   # no lesion of the set for some top model: counts only
                    continue
                metric_values = {m: {k: float(v.value) for k, v in
                                     _values(index, dataset, lesion_set, stratum, m, top).items()}
                                 for m in BOUNDARY_METRICS}
                taus = []
                for metric in BOUNDARY_METRICS:
                    order = order_models(metric_values[metric], metric)
                    row[f"{metric}_agrees_with_dice"] = order == top
                    taus.append(kendall_tau(top, order))
                row.update({
                    "dice_spread": float(max(r.value for r in dice.values()) - min(r.value for r in dice.values())),
                    "dice_seed_sd": float(max(r.seed_sd for r in dice.values())),
                    "hd95_spread_pct": relative_spread_pct(list(metric_values["hd95"].values())),
                    "asd_spread_pct": relative_spread_pct(list(metric_values["asd"].values())),
                    "contour_f1_spread": float(max(metric_values["contour_f1"].values())
                                               - min(metric_values["contour_f1"].values())),
                    "recall_spread_pp": float((max(r.value for r in recall.values())
                                               - min(r.value for r in recall.values())) * 100.0),
                    "mean_kendall_tau": float(np.mean(taus)),
                    "dice_leader_hd95_rank": int(ranks(order_models(metric_values["hd95"], "hd95"))[top[0]]),
                })
                rows.append(row)
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["setting_order"] = out["setting"].map(list(SETTINGS).index)
    out = sort_rows(out, ["dataset", "setting_order", "lesion_set"]).drop(columns="setting_order")
    for col in ("hd95_agrees_with_dice", "asd_agrees_with_dice", "contour_f1_agrees_with_dice"):
        out[col] = out[col].astype(object)
    out["dice_leader_hd95_rank"] = out["dice_leader_hd95_rank"].astype("Int64")
    return out


def dataset_table(tables_by_dataset: dict, sums_by_dataset: dict) -> pd.DataFrame:
    """Test cases, test lesions, Q1 and common Q1 lesions, Q1 upper bound (% of the image) per data set."""
    rows, sizes = [], []
    for name in sorted(tables_by_dataset):
        t: DatasetTables = tables_by_dataset[name]
        s: CaseSums = sums_by_dataset[name]
        sizes.append(t.reference["size_fraction"].to_numpy(float))
        rows.append({"dataset": name, "n_test_cases": len(t.test_cases), "n_test_lesions": len(t.reference),
                     "n_q1_lesions": s.n_lesions("Q1"), "n_common_q1_lesions": s.n_lesions("Q1", COMMON),
                     "q1_upper_bound_pct": float(t.edges["q25"]) * 100.0})
    if len(rows) > 1:
        pooled = np.concatenate(sizes)
        rows.append({"dataset": POOLED, **{k: int(sum(r[k] for r in rows)) for k in DATASET_COLUMNS[1:5]},
                     "q1_upper_bound_pct": float(np.percentile(pooled, 25)) * 100.0 if len(pooled) else 0.0})
    return pd.DataFrame(rows, columns=DATASET_COLUMNS)
