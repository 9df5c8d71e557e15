"""Qualitative small-lesion examples, chosen automatically.

Per data set, the two models with the highest mean case Dice (first configured seed) are compared on the
small (Q1) reference lesions. Candidates are lesions both models detect (all Q1 lesions if none is); among
those whose Dice differs by at most ``dice_tolerance`` (else the quarter with the closest Dice, with a
warning), the lesions with the largest HD95 difference are shown: near-equal Dice, very different
boundaries. Lesions with equal HD95 are never shown, nor lesions scored as part of a merged lesion (their
row holds the merged region's scores). Ties are broken by case id and lesion id, so the choice is
reproducible.

Each example is one row: the image slice with the crop marked, then a zoomed crop with the reference contour
and both predicted contours, and the metric values of the lesion under both models. For volumes the slice
is the one where the lesion is largest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ..components import label_components
from ..io.cases import list_cases, load_case, read_meta
from ..io.predictions import read_prediction
from ..stats.ranking import order_models
from ..stats.strata import assign_quartile
from ..stats.tables import read_metric_table, read_quartiles, read_reference_lesions
from .style import FigureInputError, placeholder, plt, save

log = logging.getLogger("lesionbench")

REFERENCE_COLOR, COLOR_A, COLOR_B = "#FFD400", "#00E5FF", "#FF4FD8"
MARGIN_PX = 6
MIN_HALF_PX = 8


@dataclass
class Example:
    dataset: str
    case_id: str
    lesion_id: int
    size_fraction: float
    pair_first: str
    pair_second: str
    metrics_a: dict
    metrics_b: dict
    near_equal_dice: bool = True  # False: no candidate within the Dice tolerance, the closest were taken


def choose_examples(
    dataset: str,
    per_case: pd.DataFrame,
    per_lesion: pd.DataFrame,
    reference: pd.DataFrame,
    edges: dict,
    n_examples: int = 2,
    dice_tolerance: float = 0.05,
) -> list[Example]:
    """Q1 lesions of ``dataset`` that the two top models (by mean case Dice) both delineate (detected with
    Dice > 0), with near-equal Dice but the most different HD95. ``per_case``/``per_lesion``: one seed, all models."""
    means = per_case.groupby("model")["dice"].mean().to_dict()
    if len(means) < 2:
        log.warning("%s: fewer than two models, no qualitative comparison", dataset)
        return []
    pair_first, pair_second = order_models(means, "dice")[:2]
    ref = reference.assign(
        quartile=assign_quartile(reference["size_fraction"], edges["q25"], edges["q50"], edges["q75"])
    )
    q1 = ref[ref["quartile"] == 0][["case_id", "lesion_id", "size_fraction"]]
    scores = ["dice", "iou", "hd95", "asd", "contour_f1", "nsd"]
    cols = ["case_id", "lesion_id", "detected"] + scores
    les = per_lesion[per_lesion["kind"] == "reference"]
    # Reference lesions whose dilations touch are scored as one merged lesion, so each of them carries the
    # merged scores; such rows (same case, identical scores) would describe a larger region than the lesion
    # shown, so they are not candidates.
    merged = les.duplicated(["model", "case_id"] + scores, keep=False) & les["detected"]
    merged_ids = set(zip(les.loc[merged, "case_id"], les.loc[merged, "lesion_id"]))
    les = les[[p not in merged_ids for p in zip(les.case_id, les.lesion_id)]]
    a = les[les.model == pair_first][cols]
    b = les[les.model == pair_second][cols]
    pairs = q1.merge(a, on=["case_id", "lesion_id"]).merge(b, on=["case_id", "lesion_id"], suffixes=("_a", "_b"))
    if pairs.empty:
        log.warning("%s: no Q1 lesion with metrics for %s and %s", dataset, pair_first, pair_second)
        return []
    # only lesions both models delineate (detected, Dice > 0): a missed lesion's HD95 is the distance
    # penalty, which shows a detection failure, not a boundary difference
    pool = pairs[pairs.detected_a & pairs.detected_b & (pairs.dice_a > 0) & (pairs.dice_b > 0)]
    if pool.empty:
        log.warning("%s: no Q1 lesion that both %s and %s delineate; no example", dataset, pair_first, pair_second)
        return []
    pool = pool.assign(d_dice=(pool.dice_a - pool.dice_b).abs(), d_hd95=(pool.hd95_a - pool.hd95_b).abs())
    pool = pool[pool.d_hd95 > 0]  # an example must show a boundary difference
    if pool.empty:
        log.warning("%s: %s and %s have the same HD95 on every Q1 lesion; no example", dataset, pair_first, pair_second)
        return []
    close = pool[pool.d_dice <= dice_tolerance]
    near = not close.empty
    if not near:
        close = pool.sort_values(["d_dice", "case_id", "lesion_id"]).head(max(1, len(pool) // 4))
        log.warning(
            "%s: no Q1 lesion where %s and %s differ by at most %.3g in Dice; showing the closest "
            "(Dice difference up to %.3g)",
            dataset,
            pair_first,
            pair_second,
            dice_tolerance,
            close.d_dice.max(),
        )
    close = close.sort_values(["d_hd95", "case_id", "lesion_id"], ascending=[False, True, True])
    # prefer distinct cases, then fill up
    picked = close.drop_duplicates("case_id").head(n_examples)
    if len(picked) < n_examples:
        picked = pd.concat([picked, close.drop(picked.index).head(n_examples - len(picked))])
    metrics = ["dice", "iou", "hd95", "asd", "contour_f1", "nsd", "detected"]
    rows: Iterable[Any] = picked.itertuples(index=False)  # namedtuples of the pool's columns
    return [
        Example(
            dataset,
            r.case_id,
            int(r.lesion_id),
            float(r.size_fraction),
            pair_first,
            pair_second,
            {m: getattr(r, f"{m}_a") for m in metrics},
            {m: getattr(r, f"{m}_b") for m in metrics},
            near,
        )
        for r in rows
    ]


def _display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An (H, W) or (H, W, 3) array in [0, 1] for imshow, windowed at the 1st-99th percentile."""

    def norm(x):
        lo, hi = np.percentile(x, [1, 99])
        return np.clip((x - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(x, dtype=float)

    if image.shape[0] >= 3:  # prepared images are normalized per channel: stretch each channel
        return np.stack([norm(image[c].astype(float)) for c in range(3)], axis=-1), None
    return norm(image[0].astype(float)), "gray"


def outline_segments(mask: np.ndarray) -> np.ndarray:
    """Pixel-border outline of a 2D mask: (n, 2, 2) segments in imshow coordinates ((x, y) pixel centres at
    integers), one per edge between a foreground and a background pixel (image border included). Exact for
    lesions a few pixels wide, where interpolated iso-contours would cut corners."""
    m = np.pad(np.asarray(mask, bool), 1)
    segs: list[tuple[tuple[float, float], tuple[float, float]]] = []
    rows, cols = np.nonzero(m[1:, :] != m[:-1, :])  # horizontal edges between rows r-1 and r
    for r, c in zip(rows, cols):
        y, x = float(r) - 0.5, float(c) - 1
        segs.append(((x - 0.5, y), (x + 0.5, y)))
    rows, cols = np.nonzero(m[:, 1:] != m[:, :-1])  # vertical edges between cols c-1 and c
    for r, c in zip(rows, cols):
        y, x = float(r) - 1, float(c) - 0.5
        segs.append(((x, y - 0.5), (x, y + 0.5)))
    return np.array(segs, float).reshape(-1, 2, 2)


def _contour(ax, mask, color, lw=1.6):
    segs = outline_segments(mask)
    if len(segs):
        ax.add_collection(LineCollection(segs, colors=color, linewidths=lw, capstyle="projecting"))


def _prediction_labels(prepared) -> dict | None:
    """The label settings predictions of this data set are read with (as the evaluation reads them)."""
    from ..evaluation.folder import shared_labels

    return shared_labels(read_meta(prepared, c) for c in list_cases(prepared))


def load_example_slice(
    example: Example, prepared: str | os.PathLike, predictions: dict, threshold: float | None = None
):
    """(image (C,H,W), reference, lesion, prediction A, prediction B (H,W) bool, spacing (dy,dx), slice or None).

    ``threshold``: prediction files are probability maps read as value >= threshold (None: binary/label maps).
    An image with no channel (a data set given as reference masks only) stays (0, H, W)."""
    meta = read_meta(prepared, example.case_id)
    case = load_case(prepared, example.case_id, mmap=True)
    labels, n = label_components(np.asarray(case.mask))
    if example.lesion_id > n:
        raise FigureInputError(
            f"{prepared}/{example.case_id}: reference has {n} lesions, no lesion "
            f"{example.lesion_id} (lesions.csv out of date?)"
        )
    lesion = labels == example.lesion_id
    label_map = _prediction_labels(prepared) if (meta.get("source") or {}).get("labels") else None
    pa = read_prediction(predictions[example.pair_first], meta, threshold=threshold, labels=label_map)
    pb = read_prediction(predictions[example.pair_second], meta, threshold=threshold, labels=label_map)
    ref = np.asarray(case.mask) > 0
    image = np.asarray(case.image)
    k = None
    if lesion.ndim == 3:
        k = int(np.argmax(lesion.sum(axis=(1, 2))))
        image, ref, lesion, pa, pb = image[:, k], ref[k], lesion[k], pa[k], pb[k]
    return image, ref, lesion, pa, pb, tuple(case.spacing[-2:]), k


def _crop_box(lesion: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(lesion)
    cy, cx = (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2
    half = max(MIN_HALF_PX, max(rows.max() - rows.min(), cols.max() - cols.min()) / 2 + MARGIN_PX)
    h, w = lesion.shape
    y0, y1 = int(max(0, np.floor(cy - half))), int(min(h, np.ceil(cy + half) + 1))
    x0, x1 = int(max(0, np.floor(cx - half))), int(min(w, np.ceil(cx + half) + 1))
    return y0, y1, x0, x1


def _metric_text(model, m) -> str:
    hit = "" if m["detected"] else " (missed)"
    return (
        f"{model}{hit}: Dice {m['dice']:.2f}, HD95 {m['hd95']:.1f} mm, ASD {m['asd']:.1f} mm, "
        f"contour F1 {m['contour_f1']:.2f}"
    )


def render_examples(
    examples: list[Example], sources: dict, path: str | os.PathLike, threshold: float | None = None
) -> None:
    """One row per example; ``sources``: {dataset: (prepared folder, {model: predictions folder})}. A case
    without an image (reference masks only) is drawn on its reference mask."""
    if not examples:
        placeholder(
            path,
            "No qualitative example: no data set has two models that differ in HD95 on a Q1 "
            "lesion both detect (see the rule's log)",
        )
        return
    fig, axes = plt.subplots(
        len(examples), 2, figsize=(9.5, 4.1 * len(examples)), squeeze=False, gridspec_kw={"width_ratios": [1, 1.15]}
    )
    for row, ex in zip(axes, examples):
        prepared, predictions = sources[ex.dataset]
        image, ref, lesion, pa, pb, (dy, dx), k = load_example_slice(ex, prepared, predictions, threshold)
        shown, cmap = _display(image) if image.shape[0] else (0.35 * ref.astype(float), "gray")
        y0, y1, x0, x1 = _crop_box(lesion)
        ax = row[0]
        ax.imshow(shown, cmap=cmap, aspect=dy / dx, interpolation="nearest")
        _contour(ax, ref, REFERENCE_COLOR, lw=0.6)
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="white", lw=1.2))
        where = f", slice {k}" if k is not None else ""
        note = "" if ex.near_equal_dice else "\n(no Q1 lesion with near-equal Dice: closest Dice shown)"
        ax.set_title(f"{ex.dataset}: {ex.case_id}{where}{note}", fontsize=9)
        ax.axis("off")
        ax = row[1]
        crop = (slice(y0, y1), slice(x0, x1))
        ax.imshow(shown[crop], cmap=cmap, aspect=dy / dx, interpolation="nearest")
        # reference filled and outlined; A and B outlined with nested widths so coinciding borders stay visible
        ax.imshow(
            np.ma.masked_where(~ref[crop], np.ones(ref[crop].shape)),
            cmap=ListedColormap([REFERENCE_COLOR]),
            alpha=0.35,
            aspect=dy / dx,
            interpolation="nearest",
            vmin=0,
            vmax=1,
        )
        _contour(ax, ref[crop], REFERENCE_COLOR, lw=1.2)
        _contour(ax, pa[crop], COLOR_A, lw=2.6)
        _contour(ax, pb[crop], COLOR_B, lw=1.1)
        ax.set_title(
            f"lesion {ex.lesion_id} (Q1, {ex.size_fraction * 100:.3g}% of the image) at the centre "
            f"of a {(x1 - x0) * dx:.0f} x {(y1 - y0) * dy:.0f} mm crop",
            fontsize=8,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_xlabel(
            _metric_text(ex.pair_first, ex.metrics_a) + "\n" + _metric_text(ex.pair_second, ex.metrics_b), fontsize=7.5
        )
        handles = [
            Patch(facecolor=REFERENCE_COLOR, alpha=0.6, edgecolor=REFERENCE_COLOR, label="reference"),
            Line2D([], [], color=COLOR_A, lw=2.6, label=ex.pair_first),
            Line2D([], [], color=COLOR_B, lw=1.1, label=ex.pair_second),
        ]
        ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.suptitle(
        "Small (Q1) lesions: near-equal Dice, different HD95 (the two best models by mean Dice)",
        fontsize=11,
        y=1 - 0.08 / fig.get_figheight(),
        va="top",
    )
    save(fig, path)


def qualitative_figure(
    per_case_paths,
    per_lesion_paths,
    lesions_paths,
    quartiles_paths,
    prepared_dirs,
    prediction_dirs,
    path: str | os.PathLike,
    n_examples: int = 2,
    dice_tolerance: float = 0.05,
    threshold: float | None = None,
) -> list[Example]:
    """Choose and render the examples of every data set. Files are matched to data sets by the results
    layout: data/{dataset}/lesions.csv|quartiles.csv|prepared; ``prediction_dirs`` is either a mapping
    {(dataset, model): folder} (any folders, e.g. external predictions) or folders laid out as
    predictions/{dataset}/{model}/seed{seed}."""
    prepared = {Path(p).parent.name: p for p in prepared_dirs}
    if not isinstance(prediction_dirs, dict):
        prediction_dirs = {(Path(p).parent.parent.name, Path(p).parent.name): p for p in prediction_dirs}
    predictions: dict = {}
    for (dataset, model), p in prediction_dirs.items():
        predictions.setdefault(dataset, {})[model] = str(p)
    lesions = {Path(p).parent.name: p for p in lesions_paths}
    quartiles = {Path(p).parent.name: p for p in quartiles_paths}
    pcs = pd.concat([read_metric_table(p, "case") for p in per_case_paths], ignore_index=True)
    lesion_tables = [read_metric_table(p, "lesion") for p in per_lesion_paths]
    pls = (
        pd.concat([df for df in lesion_tables if len(df)], ignore_index=True)
        if any(len(df) for df in lesion_tables)
        else None
    )
    examples = []
    for dataset in sorted(prepared):
        for what, mapping in (("lesions.csv", lesions), ("quartiles.csv", quartiles), ("predictions", predictions)):
            if dataset not in mapping:
                raise FigureInputError(f"data set {dataset!r}: no {what} given for the qualitative figure")
        pc = pcs[pcs.dataset == dataset]
        if pls is None or pc.empty:
            continue
        seed = int(pc["seed"].min())
        pc = pc[pc.seed == seed]
        pl = pls[(pls.dataset == dataset) & (pls.seed == seed)]
        ref = read_reference_lesions(lesions[dataset], dataset)
        chosen = choose_examples(
            dataset, pc, pl, ref, read_quartiles(quartiles[dataset], dataset), n_examples, dice_tolerance
        )
        for ex in chosen:
            for model in (ex.pair_first, ex.pair_second):
                if model not in predictions[dataset]:
                    raise FigureInputError(f"data set {dataset!r}: no predictions folder for model {model!r}")
        examples += chosen
    sources = {d: (prepared[d], predictions.get(d, {})) for d in prepared}
    render_examples(examples, sources, path, threshold)
    return examples
