"""Resolution fidelity: 2D training by whole-image resize against native-resolution patches.

A synthetic fundus data set is generated here with the generator of the default run
(`lesionbench.data.synthetic.make_fundus`: dots, haemorrhages and exudates of about 1 to 100 pixels, their
size in pixels independent of the image size) and prepared as the pipeline prepares it (z-score, no
resize). The default, 512 x 768 images and 256-pixel patches, has exactly the resize factors of the earlier
IDRiD protocol (prepared at 1024 x 1536, squashed to 512 x 512: 2-fold and 3-fold) at a quarter of the compute;
`--size 1024 1536 --input-size 512` runs the full scale. The same model, seed, optimizer and step budget
are then trained twice with `lesionbench.training.train`:
- `resize`: every image squashed to `input_size x input_size` (training.mode: resize), logits resized back;
- `patch`: `input_size` patches at the prepared resolution, sliding-window inference (training.mode: patch).
Both are evaluated with the study's own metric code (`lesionbench.metrics.evaluate_case`, postprocessing
threshold 0.5, 3-voxel minimum) on the same test images. Printed side by side:
- how many training lesions the model can see at all (the resize mode's targets lose the smallest ones);
- pooled Dice; lesion recall over all test lesions and over Q1 (the smallest quartile of the test
  reference lesions by size fraction, edges as in the pipeline);
- Q1 HD95 (pixels = mm here) over the Q1 lesions *both* variants detected (the paired boundary comparison;
  a missed lesion's penalty would turn it into a detection rate), and the same over the lesions of every size
  both detected (a boundary comparison even where one variant detects no Q1 lesion);
- training seconds (steps + per-epoch validation) and inference seconds per test image.

    .venv/bin/python benchmarks/resolution_fidelity.py                    # default: about 16 minutes, 2 cores
    .venv/bin/python benchmarks/resolution_fidelity.py --size 1024 1536 --input-size 512   # full scale
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lesionbench.components import label_components
from lesionbench.data.lesions import quartile_edges, quartile_index
from lesionbench.data.prepare import prepare_case, resize_lesion_counts
from lesionbench.data.sources import RawCase
from lesionbench.data.synthetic import make_fundus
from lesionbench.inference import load_model, predict_case
from lesionbench.io.cases import load_case, save_case
from lesionbench.metrics.case import evaluate_case
from lesionbench.training import train
from lesionbench.training.transforms import resize_mask

# A small member of the resunet family, so the comparison runs in minutes on a laptop CPU.
MODEL = ("resunet", {"arch": "Unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 8]})


def make_dataset(root: Path, size: tuple[int, int], n_train: int, n_val: int, n_test: int, seed: int):
    """Generate, prepare and save the cases; return the prepared folder and split.csv."""
    ids, splits = [], []
    for i in range(n_train + n_val + n_test):
        rng = np.random.default_rng([seed, i])
        while True:  # every image holds lesions, so each test image contributes to the lesion figures
            rgb, labels = make_fundus(size, rng)
            if labels.any():
                break
        raw = RawCase(f"fundus_{i:03d}", np.moveaxis(rgb, -1, 0).astype(np.float32), labels, (1.0, 1.0))
        save_case(prepare_case(raw, "fidelity", {"normalization": "zscore", "resize": None}), root / "prepared")
        ids.append(raw.case_id)
        splits.append("train" if i < n_train else "val" if i < n_train + n_val else "test")
    pd.DataFrame({"case_id": ids, "split": splits}).to_csv(root / "split.csv", index=False)
    return root / "prepared", root / "split.csv", pd.DataFrame({"case_id": ids, "split": splits})


def run_variant(mode: str, prepared: Path, split_csv: Path, test_ids: list[str], out: Path, args) -> dict:
    training = {
        "mode": mode,
        "input_size": args.input_size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "steps_per_epoch": args.steps // args.epochs,
        "patience": 0,
        "warmup_epochs": 0,
        "lr": args.lr,
        "foreground_slice_ratio": 0.9,
        "val_batch_size": 4,
    }
    inference = {"tile_overlap": args.tile_overlap, "batch_size": 4}
    t0 = time.perf_counter()
    train(
        prepared,
        split_csv,
        out,
        MODEL[0],
        MODEL[1],
        training,
        seed=args.seed,
        device="cpu",
        dataset="fidelity",
        threads=args.threads,
        progress=False,
        inference=inference,
    )
    train_s = time.perf_counter() - t0
    model, info = load_model(out / "best.pt")
    results, infer_s = [], 0.0
    for cid in test_ids:
        case = load_case(prepared, cid, mmap=True)
        t0 = time.perf_counter()
        pred = predict_case(model, info, case.image, 0.5, 3, inference=inference)
        infer_s += time.perf_counter() - t0
        results.append(
            evaluate_case(
                np.asarray(case.mask),
                pred,
                case.spacing,
                tolerance_mm=1.0,
                dilation_mm=args.dilation,
                min_component_voxels=0,
            )
        )
    return {"train_s": train_s, "infer_s": infer_s / len(test_ids), "results": results}


def lesion_rows(results, edges) -> pd.DataFrame:
    rows = []
    for case_no, ev in enumerate(results):
        for les in ev.lesions:
            if les.kind == "reference":
                frac = float(ev.lesion_fractions[les.index])
                rows.append(
                    {
                        "case": case_no,
                        "lesion": les.index,
                        "q": int(quartile_index(frac, edges)[0]),
                        "detected": les.detected,
                        "hd95": les.scores.hd95,
                    }
                )
    return pd.DataFrame(rows).set_index(["case", "lesion"])


def visible_training_lesions(prepared: Path, train_ids: list[str], size: int) -> tuple[int, int]:
    """(lesions in the training masks, lesions left in them after the resize mode's resize)."""
    total = kept = 0
    for cid in train_ids:
        mask = np.asarray(load_case(prepared, cid, mmap=True, image=False).mask)
        total += label_components(mask)[1]
        counts = resize_lesion_counts(mask, resize_mask(mask, (size, size)))
        kept += counts["lesions_source"] - counts["lesions_lost"] - counts["lesions_merged"]
    return total, kept


def _mean_text(values: pd.Series) -> str:
    return f"{values.mean():.2f}" if len(values) else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=[512, 768], help="image height width")
    ap.add_argument("--input-size", type=int, default=256, help="patch size = resize target")
    ap.add_argument("--n-train", type=int, default=8)
    ap.add_argument("--n-val", type=int, default=1)
    ap.add_argument("--n-test", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000, help="optimizer steps, both variants")
    ap.add_argument("--epochs", type=int, default=10, help="validation (model selection) after each")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--tile-overlap", type=float, default=0.5)
    ap.add_argument("--dilation", type=float, default=2.0, help="lesion matching radius (pixels)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        prepared, split_csv, split = make_dataset(
            root, tuple(args.size), args.n_train, args.n_val, args.n_test, args.seed
        )
        gen_s = time.perf_counter() - t0
        test_ids = split.loc[split["split"] == "test", "case_id"].tolist()
        train_ids = split.loc[split["split"] == "train", "case_id"].tolist()
        runs = {
            mode: run_variant(mode, prepared, split_csv, test_ids, root / mode, args) for mode in ("resize", "patch")
        }
        seen_total, seen_resized = visible_training_lesions(prepared, train_ids, args.input_size)

    ref = runs["patch"]["results"]
    fractions = np.concatenate([ev.lesion_fractions for ev in ref])
    edges = quartile_edges(fractions, "fidelity")
    tables = {m: lesion_rows(r["results"], edges) for m, r in runs.items()}
    q1 = tables["patch"]["q"] == 0
    both = tables["patch"]["detected"] & tables["resize"]["detected"]
    common = q1 & both
    h, w = args.size
    print(
        f"synthetic fundus {h} x {w}: {args.n_train} train / {args.n_val} val / {args.n_test} test images "
        f"(generated and prepared in {gen_s:.0f} s); model {MODEL[0]} {MODEL[1]['encoder']} depth "
        f"{MODEL[1]['encoder_depth']}; {args.steps} steps of {args.batch_size} at {args.input_size} px, "
        f"{args.threads} threads"
    )
    print(
        f"test reference lesions: {len(fractions)}, Q1 = size fraction <= {edges['q25']:.3g} "
        f"(<= {edges['q25'] * h * w:.1f} px): {int(q1.sum())} lesions; {int(common.sum())} Q1 lesions "
        f"detected by both variants; {int(both.sum())} lesions of any size detected by both"
    )
    header = (
        f"{'variant':<8} {'train lesions seen':>18} {'Dice':>6} {'recall':>7} {'Q1 recall':>9} "
        f"{'Q1 HD95 common':>14} {'HD95 common':>11} {'train s':>8} {'infer s/img':>11}"
    )
    print(header)
    print("-" * len(header))
    for mode in ("resize", "patch"):
        t, ev = tables[mode], runs[mode]["results"]
        inter = sum(e.scores.dice * (e.ref_voxels + e.pred_voxels) / 2 for e in ev)
        total = sum(e.ref_voxels + e.pred_voxels for e in ev)
        dice = 2 * inter / total if total else 1.0
        hd_q1, hd_all = (_mean_text(t.loc[sel[sel].index, "hd95"]) for sel in (common, both))
        seen = seen_resized if mode == "resize" else seen_total
        print(
            f"{mode:<8} {f'{seen} / {seen_total}':>18} {dice:>6.3f} {t['detected'].mean():>7.3f} "
            f"{t.loc[q1, 'detected'].mean():>9.3f} {hd_q1:>14} {hd_all:>11} {runs[mode]['train_s']:>8.1f} "
            f"{runs[mode]['infer_s']:>11.2f}"
        )


if __name__ == "__main__":
    main()
