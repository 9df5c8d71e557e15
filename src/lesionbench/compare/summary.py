"""``summary/{dataset}.json`` of an evaluation-only run, one per data set: per model, the means of every
case-level metric, lesion recall, false positives per case and every case's values (like nnU-Net's
summary.json, beside the stratified tables).

Definitions (the same as the overall study table, docs/metrics.md):
- metric mean = mean over test cases of the case-level value (dice, iou, hd95, asd, contour_f1, nsd);
- lesion recall = hit reference lesions / reference lesions, pooled over cases;
- FP per case = false-positive lesions / number of cases.
"""

from __future__ import annotations

import os

import pandas as pd

from ..io.atomic import write_json
from ..io.tables import read_table

CASE_METRICS = ["dice", "iou", "hd95", "asd", "contour_f1", "nsd"]
CASE_VALUES = CASE_METRICS + [
    "ref_voxels",
    "pred_voxels",
    "n_ref_lesions",
    "n_hit_lesions",
    "n_fp_lesions",
    "ref_empty",
    "pred_empty",
    "missing_prediction",
]


def model_summary(per_case: pd.DataFrame) -> dict:
    """The summary block of one model (one seed) from its per_case table."""
    table = per_case.sort_values("case_id", kind="stable")
    n_ref = int(table["n_ref_lesions"].sum())
    missing = table.loc[table["missing_prediction"].astype(str).str.lower() == "true", "case_id"].astype(str)
    return {
        "n_cases": len(table),
        "mean": {m: float(table[m].mean()) for m in CASE_METRICS},
        "lesion_recall": float(table["n_hit_lesions"].sum() / n_ref) if n_ref else None,
        "fp_per_case": float(table["n_fp_lesions"].sum() / len(table)) if len(table) else None,
        "n_reference_lesions": n_ref,
        "n_false_positive_lesions": int(table["n_fp_lesions"].sum()),
        "missing_predictions": sorted(missing),
        "cases": {str(r["case_id"]): {k: _plain(r[k]) for k in CASE_VALUES} for _, r in table.iterrows()},
    }


def _plain(value):
    if isinstance(value, str):
        return value.lower() == "true" if value.lower() in ("true", "false") else value
    return value.item() if hasattr(value, "item") else value


def write_summary(
    dataset: str, models: list[str], per_case_paths: list, summary_path: str | os.PathLike, settings: dict
) -> dict:
    """Write the summary of one data set (``summary/{dataset}.json``) from each model's per_case table (in
    the order of ``models``)."""
    from ..evaluation import PER_CASE_COLUMNS

    models_out: dict[str, dict] = {}
    summary: dict = {"dataset": dataset, "settings": settings, "models": models_out}
    for model, pc_path in zip(models, per_case_paths):
        models_out[model] = model_summary(read_table(pc_path, PER_CASE_COLUMNS))
    summary["comparison"] = (
        "one model: nothing to compare (the ranking and pairwise tables hold no model pair)"
        if len(models) < 2
        else f"{len(models)} models: see answer/summary.txt, overall_metrics.csv, size_stratified_metrics.csv, "
        f"ranking_reversals.csv and bootstrap_directional_robustness.csv"
    )
    write_json(summary, summary_path)
    return summary
