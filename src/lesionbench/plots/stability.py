"""Rank stability blob plot: for each data set and setting, how often each model holds each rank over the
paired case-bootstrap resamples (``ranking_stability.csv``)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..stats.tables import POOLED
from .style import METRIC_SHORT, model_colors, placeholder, plt, require_columns, save

COLUMNS = [
    "dataset",
    "lesion_set",
    "stratum",
    "metric",
    "model",
    "rank",
    "share",
    "observed_rank",
    "insufficient_lesions",
]
# (lesion set, stratum, metric) per column: case-level ranks over all cases, then delineation of the
# smallest lesions on the lesions every model detected.
PANELS = (
    ("all", "overall", "dice"),
    ("all", "overall", "hd95"),
    ("all", "overall", "asd"),
    ("all", "overall", "contour_f1"),
    ("common", "Q1", "hd95"),
    ("common", "Q1", "asd"),
    ("common", "Q1", "contour_f1"),
)
AREA = 260.0  # marker area (pt^2) of a share of 1


def panel_title(lesion_set: str, stratum: str, metric: str) -> str:
    where = "all cases" if stratum == "overall" else f"{stratum}, {lesion_set} lesions"
    return f"{METRIC_SHORT.get(metric, metric)}\n({where})"


def ranking_stability_figure(stability: pd.DataFrame, path: str | os.PathLike, panels=PANELS) -> None:
    """Rows = data sets (pooled last), columns = ``panels``. In a panel: models (rows) x ranks (columns), dot
    area proportional to the share of resamples, a ring at the observed rank."""
    require_columns(stability, COLUMNS, "ranking_stability.csv")
    datasets = sorted(d for d in stability["dataset"].unique() if d != POOLED)
    if POOLED in set(stability["dataset"]):
        datasets.append(POOLED)
    present = set(zip(stability["lesion_set"], stability["stratum"], stability["metric"]))
    panels = [p for p in panels if p in present]
    if not panels:
        placeholder(path, "ranking_stability.csv holds none of the plotted settings")
        return
    models = sorted(stability["model"].unique())
    colors = model_colors(models)
    n_models = len(models)
    fig, axes = plt.subplots(
        len(datasets),
        len(panels),
        squeeze=False,
        figsize=(1.55 * len(panels) + 1.6, 0.32 * n_models * len(datasets) + 1.1 * len(datasets)),
    )
    for i, dataset in enumerate(datasets):
        for j, (lesion_set, stratum, metric) in enumerate(panels):
            ax = axes[i, j]
            d = stability[
                (stability.dataset == dataset)
                & (stability.lesion_set == lesion_set)
                & (stability.stratum == stratum)
                & (stability.metric == metric)
            ]
            ax.set_xlim(0.4, n_models + 0.6)
            ax.set_ylim(n_models - 0.4, -0.6)
            ax.set_xticks(range(1, n_models + 1))
            ax.set_yticks(range(n_models), [m.replace("_", " ") for m in models] if j == 0 else [])
            ax.grid(False)
            if i == 0:
                ax.set_title(panel_title(lesion_set, stratum, metric), fontsize=8)
            if i == len(datasets) - 1:
                ax.set_xlabel("rank", fontsize=8)
            if j == 0:
                ax.annotate(
                    dataset + (" (all)" if dataset == POOLED else ""),
                    (-0.9, 0.5),
                    xycoords="axes fraction",
                    rotation=90,
                    va="center",
                    ha="center",
                    fontsize=9,
                )
            if d.empty:
                ax.text(
                    (n_models + 1) / 2,
                    (n_models - 1) / 2,
                    "no lesion of\nthe set",
                    ha="center",
                    va="center",
                    fontsize=7,
                )
                continue
            y = np.array([models.index(m) for m in d["model"]])
            ax.scatter(
                d["rank"],
                y,
                s=AREA * d["share"].to_numpy(float),
                c=[colors[m] for m in d["model"]],
                alpha=0.85,
                linewidths=0,
            )
            observed = d.drop_duplicates("model")
            ax.scatter(
                observed["observed_rank"],
                [models.index(m) for m in observed["model"]],
                s=AREA * 1.8,
                facecolors="none",
                edgecolors="black",
                linewidths=0.8,
            )
            if bool(d["insufficient_lesions"].any()):
                ax.text(
                    0.5,
                    0.01,
                    "too few lesions",
                    transform=ax.transAxes,
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    color="#D55E00",
                )
    fig.suptitle(
        "Rank stability over paired case-bootstrap resamples (dot area = share of resamples; ring = observed rank)",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path)
