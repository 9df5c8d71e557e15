"""Ranking-reversal matrix: for each data set, stratum and boundary metric, how the model order differs
from the order under Dice."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.patches import Rectangle

from ..stats.tables import BOUNDARY_METRICS, POOLED, STRATA
from .style import METRIC_SHORT, STRATUM_LABELS, plt, require_columns, save

COLUMNS = ["dataset", "lesion_set", "stratum", "metric", "dice_leader", "dice_leader_rank", "kendall_tau",
           "leader_changed", "n_models", "n_lesions", "insufficient_lesions"]
SET_LABELS = {"all": "all lesions", "common": "common lesions"}


def matrix_rows(ranking: pd.DataFrame) -> list[tuple[str, str]]:
    """(lesion_set, stratum) rows of the matrix: all cases, then each quartile on all and on common lesions."""
    have = set(zip(ranking["lesion_set"], ranking["stratum"]))
    rows = [("all", "overall")] + [(ls, q) for q in STRATA[1:] for ls in ("all", "common")]
    return [r for r in rows if r in have]


def row_label(lesion_set: str, stratum: str) -> str:
    return STRATUM_LABELS[stratum] if stratum == "overall" else f"{STRATUM_LABELS[stratum]}, {SET_LABELS[lesion_set]}"


def ranking_reversal_matrix(ranking: pd.DataFrame, path: str | os.PathLike) -> None:
    """One panel per data set (pooled last): rows = all cases, then each quartile on all lesions (misses
    scored with the penalty) and on the common lesions (every model detected them), columns = HD95, ASD,
    contour F1. Colour = Kendall tau between the model order under Dice and under the metric (1 = same
    order, -1 = reversed); text = tau and the rank the Dice leader gets under the metric; a black frame marks
    a lost lead. The first column names each row's Dice leader and the lesions behind it ("few": fewer than
    claim.min_lesions)."""
    require_columns(ranking, COLUMNS, "ranking_reversals.csv")
    datasets = sorted(d for d in ranking["dataset"].unique() if d != POOLED)
    if POOLED in set(ranking["dataset"]):
        datasets.append(POOLED)
    metrics = [m for m in BOUNDARY_METRICS if m in set(ranking["metric"])]
    strata = matrix_rows(ranking)
    ncols = min(len(datasets), 4)
    nrows = int(np.ceil(len(datasets) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols + 0.8, 0.62 * len(strata) * nrows + 1.3 * nrows),
                             squeeze=False)
    norm = TwoSlopeNorm(vmin=-1.0, vcenter=0.0, vmax=1.0)
    cmap = plt.get_cmap("RdBu")
    image = None
    leader_x = -1.3  # a text column left of the matrix: the Dice leader of each stratum
    for index, (ax, dataset) in enumerate(zip(axes.flat, datasets)):
        d = ranking[ranking["dataset"] == dataset]
        tau = np.full((len(strata), len(metrics)), np.nan)
        for i, (lesion_set, stratum) in enumerate(strata):
            rows = d[(d.lesion_set == lesion_set) & (d.stratum == stratum)]
            if rows.empty:
                ax.text(leader_x, i, "no lesion", ha="center", va="center", fontsize=7, color="0.4")
                continue
            count = "" if stratum == "overall" else (
                f"\nn={int(rows['n_lesions'].iloc[0])}{' (few)' if bool(rows['insufficient_lesions'].iloc[0]) else ''}")
            ax.text(leader_x, i, rows["dice_leader"].iloc[0].replace("_", " ") + count, ha="center", va="center",
                    fontsize=7, wrap=True)
            for j, metric in enumerate(metrics):
                row = rows[rows.metric == metric]
                if row.empty:
                    continue
                r = row.iloc[0]
                tau[i, j] = r.kendall_tau
                color = "white" if abs(r.kendall_tau) > 0.6 else "black"
                ax.text(j, i, f"\u03c4={r.kendall_tau:+.2f}\nleader #{int(r.dice_leader_rank)}", ha="center",
                        va="center", fontsize=7, color=color)
                if bool(r.leader_changed):
                    ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=1.6, ec="black"))
        image = ax.imshow(np.ma.masked_invalid(tau), cmap=cmap, norm=norm, aspect="auto",
                          extent=(-0.5, len(metrics) - 0.5, len(strata) - 0.5, -0.5))
        ax.set_xlim(leader_x - 0.75, len(metrics) - 0.5)
        ax.set_xticks([leader_x] + list(range(len(metrics))),
                      ["Dice leader"] + [METRIC_SHORT[m] for m in metrics])
        ax.set_yticks(range(len(strata)), [row_label(*r) for r in strata] if index % ncols == 0 else [])
        ax.set_title(dataset + (" (all data sets)" if dataset == POOLED else ""))
        ax.grid(False)
        ax.tick_params(length=0)
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    if image is not None:
        fig.subplots_adjust(wspace=0.06, hspace=0.35)
        bar = fig.colorbar(image, ax=list(axes.flat), fraction=0.03, pad=0.02)
        bar.set_label("Kendall \u03c4 vs Dice order")
    fig.suptitle("Model order under boundary metrics vs under Dice (framed: the Dice leader loses the lead)",
                 fontsize=11)
    save(fig, path)
