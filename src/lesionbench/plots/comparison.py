"""How far apart the models are: over all cases vs on the smallest lesions (Q1), and per size quartile.

Delineation (Dice, HD95, ASD, contour F1) is shown on the ``common`` lesion set (the lesions every model and
seed detected), detection (lesion recall) on all lesions, in panels of their own: a missed lesion scored
with the distance penalty would otherwise turn a boundary mean into a detection rate.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..stats.tables import LESION_SETS, POOLED, QUARTILES
from .style import (
    DATASET_MARKERS,
    METRIC_LABELS,
    METRIC_SHORT,
    PALETTE,
    STRATUM_LABELS,
    lesion_set_rows,
    metric_label,
    model_colors,
    placeholder,
    plt,
    require_columns,
    save,
)

ALL, _, COMMON = LESION_SETS

FIGURE_METRICS = ("dice", "hd95", "asd", "contour_f1")


def relative_spread(values) -> float:
    """Spread among models as a share of their mean magnitude: (max - min) / mean(|value|); 0 if all are 0."""
    v = np.asarray(values, float)
    scale = np.mean(np.abs(v))
    return float((v.max() - v.min()) / scale) if scale > 0 else 0.0


def _panel(ax, left: pd.DataFrame, right: pd.DataFrame, models, colors, with_ci: bool) -> tuple[float, float]:
    """Each model's value on the left (with its CI if given) joined to its value on the right; returns the
    relative spreads of both sides (NaN where a side has no value)."""
    n = len(models)
    for i, model in enumerate(models):
        jitter = (i - (n - 1) / 2) * 0.05
        lv = left.loc[model, "value"] if model in left.index else np.nan
        rv = right.loc[model, "value"] if model in right.index else np.nan
        if not np.isnan(lv):
            if with_ci:
                row = left.loc[model]
                ax.errorbar([jitter], [lv], yerr=[[lv - row.ci_low], [row.ci_high - lv]], fmt="o",
                            color=colors[model], ms=4, capsize=2, lw=1)
            else:
                ax.plot([jitter], [lv], "o", color=colors[model], ms=4)
        if not np.isnan(rv):
            ax.plot([1 + jitter], [rv], "s", color=colors[model], ms=4)
        if not (np.isnan(lv) or np.isnan(rv)):
            ax.plot([jitter, 1 + jitter], [lv, rv], color=colors[model], lw=1, alpha=0.7)
    spreads = []
    for x, side in ((0, left), (1, right)):
        vals = side["value"].dropna() if len(side) else pd.Series(dtype=float)
        if len(vals):
            ax.annotate(f"range {vals.max() - vals.min():.3g}", (x, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=7, color="0.3")
        spreads.append(relative_spread(vals) if len(vals) >= 2 else np.nan)
    ax.set_xlim(-0.45, 1.45)
    ax.margins(y=0.18)
    return spreads[0], spreads[1]


def _lesion_count_label(rows: pd.DataFrame, name: str, min_lesions_hint: bool = True) -> str:
    """'Q1, common\n(n=12)', with a warning mark when the count is flagged insufficient."""
    if rows.empty:
        return f"{name}\n(n=0)"
    n = int(rows["n_lesions"].min())
    flagged = bool(rows["insufficient_lesions"].any()) if "insufficient_lesions" in rows else False
    return f"{name}\n(n={n}{', too few' if flagged and min_lesions_hint else ''})"


def overall_vs_small_lesion(overall: pd.DataFrame, small: pd.DataFrame, path: str | os.PathLike,
                            metrics=FIGURE_METRICS) -> None:
    """Delineation and detection, apart. Rows 1..4 (Dice, HD95, ASD, contour F1): per data set, each
    model's value over all test cases (case mean, bootstrap CI) joined to its mean over the ``common`` Q1
    lesions (the lesions every model and seed detected, so a boundary value is a boundary value). Last row:
    lesion recall (detection) over all reference lesions vs over Q1 lesions (lesion set ``all``). Last
    column: the spread among models in % of their mean, left vs right of each panel."""
    require_columns(overall, ["dataset", "model", "metric", "value", "ci_low", "ci_high"], "overall_metrics.csv")
    require_columns(small, ["dataset", "model", "metric", "value", "n_lesions", "insufficient_lesions"],
                    "small_lesion_metrics.csv")
    common = lesion_set_rows(small, COMMON, "small_lesion_metrics.csv")
    every = lesion_set_rows(small, ALL, "small_lesion_metrics.csv")
    datasets = sorted(d for d in overall["dataset"].unique() if d != POOLED)
    models = sorted(overall["model"].unique())
    colors = model_colors(models)
    metrics = [m for m in metrics if m in set(overall["metric"])]
    rows = [(m, common, "All cases", "Q1, common lesions") for m in metrics]
    if "lesion_recall" in set(overall["metric"]):
        rows.append(("lesion_recall", every, "All lesions", "Q1 lesions"))
    ncols = len(datasets) + 1
    fig, axes = plt.subplots(len(rows), ncols, figsize=(3.2 * ncols + 0.6, 2.6 * len(rows) + 0.9), squeeze=False)
    for r, (metric, right_table, left_name, right_name) in enumerate(rows):
        spreads = []
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            o = overall[(overall.dataset == dataset) & (overall.metric == metric)].set_index("model")
            q = right_table[(right_table.dataset == dataset) & (right_table.metric == metric)].set_index("model")
            s_left, s_right = _panel(ax, o, q, models, colors, with_ci=True)
            spreads.append((dataset, s_left, s_right))
            ax.set_xticks([0, 1], [left_name, _lesion_count_label(q, right_name)])
            if q["value"].isna().all() if len(q) else True:
                ax.text(1, 0.5, "no lesion\nin the set", transform=ax.get_xaxis_transform(), ha="center",
                        va="center", fontsize=7, color="0.3")
            if r == 0:
                ax.set_title(dataset)
            if c == 0:
                ax.set_ylabel(metric_label(metric) + ("\n(detection, all lesions)" if metric == "lesion_recall"
                                                      else "\n(delineation, common lesions)"))
        ax = axes[r, -1]
        x = np.arange(len(spreads))
        left = [0.0 if np.isnan(s[1]) else s[1] * 100 for s in spreads]
        right = [0.0 if np.isnan(s[2]) else s[2] * 100 for s in spreads]
        ax.bar(x - 0.18, left, 0.36, color="0.65", label=left_name)
        ax.bar(x + 0.18, right, 0.36, color="0.15", label=right_name)
        ax.set_xticks(x, [s[0] for s in spreads], rotation=20, ha="right")
        ax.set_ylabel(f"{METRIC_SHORT[metric]} spread (% of mean)")
        ax.set_ylim(0, max(1.0, max(left + right, default=0.0) * 1.3))
        ax.set_title("Spread among models", fontsize=9)
        ax.legend(frameon=False, loc="upper center", ncol=1, fontsize=7)
    handles = [plt.Line2D([], [], color=colors[m], marker="o", lw=1, label=m) for m in models]
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.legend(handles=handles, loc="upper center", ncol=min(len(models), 6), frameon=False,
               bbox_to_anchor=(0.5, 0.975))
    fig.suptitle("Delineation: all test cases (case means, 95% CI) vs Q1 lesions every model detected (common set)."
                 "  Detection (last row): lesion recall, all lesions vs Q1", y=0.995, fontsize=10)
    save(fig, path)


def quartile_spread(stratified: pd.DataFrame, metrics=FIGURE_METRICS, lesion_set: str = COMMON) -> pd.DataFrame:
    """Spread among models (max - min, and relative to the mean) per data set x quartile x metric on one
    lesion set; ``n_lesions`` (smallest over models) and ``insufficient_lesions`` of each cell. Cells where
    a model has no value (no lesion of the set) are left out."""
    require_columns(stratified, ["dataset", "model", "quartile", "metric", "value", "n_lesions",
                                 "insufficient_lesions"], "size_stratified_metrics.csv")
    sub = lesion_set_rows(stratified, lesion_set, "size_stratified_metrics.csv")
    sub = sub[sub["metric"].isin(metrics)]
    defined = sub.groupby(["dataset", "quartile", "metric"], sort=True)["value"].transform(lambda v: v.notna().all())
    sub = sub[defined]
    g = sub.groupby(["dataset", "quartile", "metric"], sort=True)
    out = pd.DataFrame({"spread": g["value"].max() - g["value"].min(),
                        "relative_spread": g["value"].apply(relative_spread), "n_models": g.size(),
                        "n_lesions": g["n_lesions"].min(),
                        "insufficient_lesions": g["insufficient_lesions"].any()}).reset_index()
    return out[out["n_models"] >= 2]


DISAGREEMENT_PANELS = tuple((m, COMMON) for m in FIGURE_METRICS) + (("lesion_recall", ALL),)
SET_TITLES = {ALL: "all lesions", COMMON: "common lesions", "detected": "detected lesions"}


def quartile_disagreement(stratified: pd.DataFrame, path: str | os.PathLike, panels=DISAGREEMENT_PANELS) -> None:
    """One panel per (metric, lesion set): spread among models (max - min, in the metric's unit) for Q1..Q4,
    one line per data set and a dashed black line for all data sets pooled. Boundary metrics and Dice on the
    ``common`` lesions (delineation), recall on all lesions (detection). Hollow markers: fewer lesions than
    ``claim.min_lesions`` behind the value."""
    spreads = {(m, ls): quartile_spread(stratified, (m,), ls) for m, ls in panels}
    panels = [p for p in panels if len(spreads[p])]
    if not panels:
        placeholder(path, "Disagreement among models needs at least two models with lesion-level values")
        return
    datasets = sorted({d for p in panels for d in spreads[p]["dataset"]} - {POOLED})
    has_pooled = any(POOLED in set(spreads[p]["dataset"]) for p in panels)
    ncols = 3 if len(panels) > 4 else (2 if len(panels) > 1 else 1)
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.1 * nrows + 0.5), squeeze=False)
    x = np.arange(len(QUARTILES))
    for i, (metric, lesion_set) in enumerate(panels):
        ax = axes.flat[i]
        spread = spreads[(metric, lesion_set)]
        for j, dataset in enumerate(datasets + ([POOLED] if has_pooled else [])):
            s = spread[spread.dataset == dataset].set_index("quartile")
            y = [s.loc[q, "spread"] if q in s.index else np.nan for q in QUARTILES]
            style = dict(color="black", ls="--", lw=1.8) if dataset == POOLED else \
                dict(color=PALETTE[j % len(PALETTE)], lw=1.3)
            line, = ax.plot(x, y, label=dataset, **style)
            marker = "o" if dataset == POOLED else DATASET_MARKERS[j % len(DATASET_MARKERS)]
            for k, q in enumerate(QUARTILES):
                if q in s.index:
                    few = bool(s.loc[q, "insufficient_lesions"])
                    ax.plot([k], [s.loc[q, "spread"]], marker, ms=5, color=line.get_color(),
                            mfc="white" if few else line.get_color())
        ax.set_xticks(x, [STRATUM_LABELS[q] for q in QUARTILES])
        ax.set_xlabel("Lesion size quartile")
        ax.set_ylabel(f"max - min over models of {METRIC_LABELS[metric]}")
        ax.set_title(f"{METRIC_SHORT[metric]}, {SET_TITLES[lesion_set]}")
        ax.set_ylim(bottom=0)
        ax.margins(x=0.08)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False,
               bbox_to_anchor=(0.5, 0.955))
    fig.suptitle("Disagreement among models by lesion size: delineation on the lesions every model detected "
                 "(common), detection on all lesions (hollow: too few lesions)", y=0.995, fontsize=10)
    save(fig, path)
