"""Shared look of every figure: headless backend, labels with units, one colour per model, atomic PNG save."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..io.atomic import atomic_path

DPI = 200
METRIC_LABELS = {
    "dice": "Dice",
    "iou": "IoU",
    "hd95": "HD95 (mm)",
    "asd": "ASD (mm)",
    "contour_f1": "Contour F1",
    "nsd": "NSD",
    "lesion_recall": "Lesion recall",
    "fp_per_case": "FP lesions per case",
}
METRIC_SHORT = {
    "dice": "Dice",
    "iou": "IoU",
    "hd95": "HD95",
    "asd": "ASD",
    "contour_f1": "Contour F1",
    "nsd": "NSD",
    "lesion_recall": "Recall",
    "fp_per_case": "FP/case",
}
METRIC_UNITS = {"hd95": "mm", "asd": "mm", "fp_per_case": "lesions/case"}
# Okabe-Ito: distinguishable with colour-vision deficiencies and in greyscale print.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
DATASET_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
STRATUM_LABELS = {"overall": "All cases", "Q1": "Q1 (smallest)", "Q2": "Q2", "Q3": "Q3", "Q4": "Q4 (largest)"}

plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "legend.fontsize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "figure.dpi": 100,
        "savefig.dpi": DPI,
        "axes.grid": True,
        "grid.alpha": 0.25,
        "grid.linewidth": 0.6,
    }
)


class FigureInputError(ValueError):
    """A figure's input table is missing what the figure needs; the message names it."""


def model_colors(models) -> dict:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sorted(models))}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def save(fig, path: str | os.PathLike) -> None:
    """Write the figure as PNG atomically and free it."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(fig)


def placeholder(path: str | os.PathLike, message: str) -> None:
    """A small figure that states why there is nothing to plot (the output still exists for the report)."""
    fig, ax = plt.subplots(figsize=(7, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    save(fig, path)


def lesion_set_rows(df, lesion_set: str, what: str):
    """The rows of one lesion set (``all``, ``detected``, ``common``) of a study table."""
    require_columns(df, ["lesion_set"], what)
    return df[df["lesion_set"] == lesion_set]


def require_columns(df, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FigureInputError(f"{what}: missing columns {missing}")
    if df.empty:
        raise FigureInputError(f"{what}: no rows")
