"""Training curves of one data set: training loss, validation Dice and learning rate per epoch."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .style import FigureInputError, model_colors, plt, save

LOG_COLUMNS = ("epoch", "train_loss", "val_dice", "lr", "seconds")
LINESTYLES = ["-", "--", ":", "-."]


def read_train_logs(paths) -> dict:
    """{(model, seed): log} from results/models/{dataset}/{model}/seed{seed}/train_log.csv paths."""
    logs = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise FigureInputError(f"{p}: missing")
        df = pd.read_csv(p)
        missing = [c for c in LOG_COLUMNS if c not in df.columns]
        if missing:
            raise FigureInputError(f"{p}: missing columns {missing}")
        if df.empty:
            raise FigureInputError(f"{p}: no epochs logged")
        seed_dir = p.parent.name
        if not seed_dir.startswith("seed"):
            raise FigureInputError(f"{p}: expected the layout models/{{dataset}}/{{model}}/seed{{seed}}/train_log.csv")
        logs[(p.parent.parent.name, int(seed_dir[4:]))] = df.sort_values("epoch")
    return logs


def training_curves(logs: dict, dataset: str, path: str | os.PathLike) -> None:
    """Three panels (loss, validation Dice with the best epoch marked, learning rate) with one line per
    model; seeds differ by line style."""
    if not logs:
        raise FigureInputError(f"data set {dataset!r}: no training logs")
    models = sorted({m for m, _ in logs})
    seeds = sorted({s for _, s in logs})
    colors = model_colors(models)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for (model, seed), df in sorted(logs.items()):
        style = dict(
            color=colors[model],
            ls=LINESTYLES[seeds.index(seed) % len(LINESTYLES)],
            lw=1.4,
            label=model if len(seeds) == 1 else f"{model} (seed {seed})",
        )
        axes[0].plot(df["epoch"], df["train_loss"], **style)
        axes[1].plot(df["epoch"], df["val_dice"], **style)
        best = df.loc[df["val_dice"].idxmax()]
        axes[1].plot([best["epoch"]], [best["val_dice"]], "*", color=colors[model], ms=9)
        axes[2].plot(df["epoch"], df["lr"], **style)
    axes[0].set_ylabel("Training loss (Dice + BCE)")
    axes[1].set_ylabel("Validation Dice")
    axes[2].set_ylabel("Learning rate")
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax in axes:
        ax.set_xlabel("Epoch")
    axes[1].set_ylim(bottom=0)
    fig.tight_layout(rect=(0, 0, 1, 0.84))
    fig.legend(
        *axes[0].get_legend_handles_labels(),
        loc="upper center",
        ncol=min(len(logs), 4),
        frameon=False,
        bbox_to_anchor=(0.5, 0.93),
    )
    total = sum(df["seconds"].sum() for df in logs.values())
    fig.suptitle(
        f"Training curves: {dataset} (star: best validation Dice, the checkpoint evaluated; "
        f"training time {total / 60:.1f} min in all)",
        y=0.995,
        fontsize=11,
    )
    save(fig, path)
