"""How far apart the models are: over all cases vs on the smallest lesions (Q1), and per size quartile."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..stats.tables import POOLED, QUARTILES
from .style import (DATASET_MARKERS, METRIC_LABELS, METRIC_SHORT, STRATUM_LABELS, lesion_set_rows, metric_label,
                    model_colors, placeholder, plt, require_columns, save)

FIGURE_METRICS = ("dice", "hd95", "asd", "contour_f1")


def relative_spread(values) -> float:
    """Spread among models as a share of their mean magnitude: (max - min) / mean(|value|); 0 if all are 0."""
    v = np.asarray(values, float)
    scale = np.mean(np.abs(v))
    return float((v.max() - v.min()) / scale) if scale > 0 else 0.0


def overall_vs_small_lesion(overall: pd.DataFrame, small: pd.DataFrame, path: str | os.PathLike,
                            metrics=FIGURE_METRICS) -> None:
    """Rows: metrics. Columns: one per data set, each model's value over all test cases (with its bootstrap
    CI) joined to its mean over Q1 lesions; the last column: spread among models in % of their mean, all
    cases vs Q1, per data set, so the growth of boundary-metric disagreement on small lesions is visible
    next to Dice's."""
    require_columns(overall, ["dataset", "model", "metric", "value", "ci_low", "ci_high"], "overall_metrics.csv")
    require_columns(small, ["dataset", "model", "metric", "value"], "small_lesion_metrics.csv")
    small = lesion_set_rows(small, "all", "small_lesion_metrics.csv")
    datasets = sorted(d for d in overall["dataset"].unique() if d != POOLED)
    models = sorted(overall["model"].unique())
    colors = model_colors(models)
    metrics = [m for m in metrics if m in set(overall["metric"])]
    ncols = len(datasets) + 1
    fig, axes = plt.subplots(len(metrics), ncols, figsize=(3.0 * ncols + 0.6, 2.5 * len(metrics) + 0.8),
                             squeeze=False)
    for r, metric in enumerate(metrics):
        spreads = []
        for c, dataset in enumerate(datasets):
            ax = axes[r, c]
            o = overall[(overall.dataset == dataset) & (overall.metric == metric)].set_index("model")
            q = small[(small.dataset == dataset) & (small.metric == metric)].set_index("model")
            n = len(models)
            for i, model in enumerate(models):
                jitter = (i - (n - 1) / 2) * 0.05
                if model in o.index:
                    row = o.loc[model]
                    ax.errorbar([0 + jitter], [row.value], yerr=[[row.value - row.ci_low], [row.ci_high - row.value]],
                                fmt="o", color=colors[model], ms=4, capsize=2, lw=1)
                if model in q.index:
                    ax.plot([1 + jitter], [q.loc[model, "value"]], "s", color=colors[model], ms=4)
                if model in o.index and model in q.index:
                    ax.plot([0 + jitter, 1 + jitter], [o.loc[model, "value"], q.loc[model, "value"]],
                            color=colors[model], lw=1, alpha=0.7)
            s_all = relative_spread(o["value"]) if len(o) else 0.0
            s_q1 = relative_spread(q["value"]) if len(q) else 0.0
            spreads.append((dataset, s_all, s_q1))
            ax.set_xticks([0, 1], ["All cases", "Q1 lesions"])
            ax.set_xlim(-0.45, 1.45)
            for x, vals in ((0, o["value"]), (1, q["value"])):
                if len(vals):
                    ax.annotate(f"range {vals.max() - vals.min():.3g}", (x, 1.0), xycoords=("data", "axes fraction"),
                                ha="center", va="top", fontsize=7, color="0.3")
            if r == 0:
                ax.set_title(dataset)
            if c == 0:
                ax.set_ylabel(metric_label(metric))
            ax.margins(y=0.18)
        ax = axes[r, -1]
        x = np.arange(len(spreads))
        ax.bar(x - 0.18, [s[1] * 100 for s in spreads], 0.36, color="0.65", label="All cases")
        ax.bar(x + 0.18, [s[2] * 100 for s in spreads], 0.36, color="0.15", label="Q1 lesions")
        ax.set_xticks(x, [s[0] for s in spreads], rotation=20, ha="right")
        ax.set_ylabel(f"{METRIC_SHORT[metric]} spread (% of mean)")
        ax.set_ylim(0, max(1.0, max(s[1] for s in spreads) * 130, max(s[2] for s in spreads) * 130))
        if r == 0:
            ax.set_title("Spread among models")
            ax.legend(frameon=False, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 1.02))
    handles = [plt.Line2D([], [], color=colors[m], marker="o", lw=1, label=m) for m in models]
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.legend(handles=handles, loc="upper center", ncol=min(len(models), 6), frameon=False,
               bbox_to_anchor=(0.5, 0.975))
    fig.suptitle("Model spread over all test cases (case means, 95% bootstrap CI) vs on the smallest lesions "
                 "(Q1, lesion means)", y=0.995, fontsize=11)
    save(fig, path)


def quartile_spread(stratified: pd.DataFrame, metrics=FIGURE_METRICS) -> pd.DataFrame:
    """Spread among models (max - min, and relative to the mean) per data set x quartile x metric."""
    require_columns(stratified, ["dataset", "model", "quartile", "metric", "value"], "size_stratified_metrics.csv")
    sub = lesion_set_rows(stratified, "all", "size_stratified_metrics.csv")
    sub = sub[sub["metric"].isin(metrics)]
    g = sub.groupby(["dataset", "quartile", "metric"], sort=True)["value"]
    out = pd.DataFrame({"spread": g.max() - g.min(), "relative_spread": g.apply(relative_spread),
                        "n_models": g.size()}).reset_index()
    return out[out["n_models"] >= 2]


def quartile_disagreement(stratified: pd.DataFrame, path: str | os.PathLike, metrics=FIGURE_METRICS) -> None:
    """One panel per metric: spread among models (max - min, in the metric's unit) for Q1..Q4, one line per
    data set and a dashed black line for all data sets pooled."""
    spread = quartile_spread(stratified, metrics)
    metrics = [m for m in metrics if m in set(spread["metric"])]
    if not metrics:
        placeholder(path, "Disagreement among models needs at least two models with lesion-level values")
        return
    datasets = sorted(d for d in spread["dataset"].unique() if d != POOLED)
    ncols = 2 if len(metrics) > 1 else 1
    nrows = int(np.ceil(len(metrics) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows + 0.5), squeeze=False)
    x = np.arange(len(QUARTILES))
    for i, metric in enumerate(metrics):
        ax = axes.flat[i]
        for j, dataset in enumerate(datasets + ([POOLED] if POOLED in set(spread["dataset"]) else [])):
            s = spread[(spread.dataset == dataset) & (spread.metric == metric)].set_index("quartile")
            y = [s.loc[q, "spread"] if q in s.index else np.nan for q in QUARTILES]
            style = dict(color="black", ls="--", lw=1.8, marker="") if dataset == POOLED else \
                dict(marker=DATASET_MARKERS[j % len(DATASET_MARKERS)], lw=1.3, ms=5)
            ax.plot(x, y, label=dataset, **style)
        ax.set_xticks(x, [STRATUM_LABELS[q] for q in QUARTILES])
        ax.set_xlabel("Lesion size quartile")
        ax.set_ylabel(f"max - min over models of {METRIC_LABELS[metric]}")
        ax.set_title(METRIC_SHORT[metric])
        ax.set_ylim(bottom=0)
        ax.margins(x=0.08)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False,
               bbox_to_anchor=(0.5, 0.955))
    fig.suptitle("Disagreement among models by lesion size (lesion-level means per quartile)", y=0.995,
                 fontsize=11)
    save(fig, path)
