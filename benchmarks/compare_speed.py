"""Speed of the whole `lesionbench compare` command against MONAI's HD95 + ASD alone, on the same pairs.

Builds 20 CT-sized volumes (512 x 512 x 64 voxels at 0.8 x 0.8 x 2.5 mm, ~30 ellipsoidal lesions each, the
case generator of benchmarks/metrics_speed.py) as an nnU-Net v2 raw data set (dataset.json, labelsTs/) and
two nnU-Net-style prediction folders (model_a: lesions shifted, dilated or eroded, two dropped, three false
ones; model_b: the reference dilated by one voxel in-plane, with nnU-Net's json files beside both).

Times, in one run:
1. the whole command on 2 cores: layout check, data stage, evaluation of both models (case-level and
   lesion-wise metrics), every study table, figure, summary/<data set>.json and the HTML report;
2. MONAI HausdorffDistanceMetric(percentile=95) + SurfaceDistanceMetric(symmetric=True) alone on the same 40
   reference/prediction pairs (arrays already in memory, torch on 2 threads),
and prints cases per second side by side (a case = one reference with both models' predictions), plus the
largest HD95 / ASD difference between the two (they implement the same definitions, docs/metrics.md).

    .venv/bin/python benchmarks/compare_speed.py [--cases 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_speed import make_case, monai_hd95_asd

from lesionbench.io.images import write_nifti

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (64, 512, 512)  # slice axis first (prepared layout); files are 512 x 512 x 64
SPACING = (2.5, 0.8, 0.8)
AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])


def to_file(mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(mask, (1, 2, 0))).astype(np.uint8)


def build(root: Path, n_cases: int) -> tuple[Path, dict[str, Path], list]:
    dataset = root / "nnUNet_raw" / "Dataset900_CTLesions"
    (dataset / "labelsTs").mkdir(parents=True)
    (dataset / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "CT"},
                "numTraining": 0,
                "labels": {"background": 0, "lesion": 1},
                "file_ending": ".nii.gz",
            }
        )
    )
    preds = {"model_a": root / "pred_a", "model_b": root / "pred_b"}
    for folder in preds.values():
        folder.mkdir()
        for name in ("dataset.json", "plans.json", "predict_from_raw_data_args.json"):
            (folder / name).write_text("{}")
    pairs = []
    inplane = np.zeros((1, 3, 3), bool)
    inplane[0, 1, :] = inplane[0, :, 1] = True
    for i in range(n_cases):
        ref, pred_a = make_case(SHAPE, SPACING, n_lesions=30, radius_mm=(1.5, 9.0), n_drop=2, n_false=3, seed=i)
        pred_b = ndimage.binary_dilation(ref, inplane)
        cid = f"ct_{i:03d}"
        write_nifti(to_file(ref), AFFINE, dataset / "labelsTs" / f"{cid}.nii.gz", spacing=(0.8, 0.8, 2.5))
        write_nifti(to_file(pred_a), AFFINE, preds["model_a"] / f"{cid}.nii.gz", spacing=(0.8, 0.8, 2.5))
        write_nifti(to_file(pred_b), AFFINE, preds["model_b"] / f"{cid}.nii.gz", spacing=(0.8, 0.8, 2.5))
        pairs += [(cid, "model_a", ref, pred_a), (cid, "model_b", ref, pred_b)]
    return dataset, preds, pairs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--keep", type=Path, help="build and run in this folder and keep it (default: a temp folder)")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="compare_speed_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        dataset, preds, pairs = build(root, args.cases)
        print(
            f"built {args.cases} volumes {SHAPE[1]}x{SHAPE[2]}x{SHAPE[0]} "
            f"({np.mean([len(np.unique(ndimage.label(p[2])[0])) - 1 for p in pairs[::2]]):.1f} lesions each) "
            f"and 2 prediction folders in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

        out = root / "out"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
        cmd = [
            sys.executable,
            "-m",
            "lesionbench.cli",
            "compare",
            "--reference",
            str(dataset),
            "--predictions",
            f"model_a={preds['model_a']}",
            "--predictions",
            f"model_b={preds['model_b']}",
            "--out",
            str(out),
            "--cores",
            "2",
            "--tolerance-mm",
            "2",
            "--dilation-mm",
            "3",
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        ours = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"lesionbench compare failed:\n{proc.stderr[-4000:]}")

        torch.set_num_threads(2)
        t0 = time.perf_counter()
        monai = {(cid, model): monai_hd95_asd(ref, pred, SPACING) for cid, model, ref, pred in pairs}
        theirs = time.perf_counter() - t0

        diffs = []
        for model in preds:
            table = pd.read_csv(
                out / "metrics" / dataset.name / model / "seed0" / "per_case.csv", dtype={"case_id": str}
            )
            for r in table.itertuples():
                hd, asd = monai[(r.case_id, model)]
                diffs.append((abs(r.hd95 - hd), abs(r.asd - asd)))
        diffs = np.asarray(diffs)
        n = args.cases
        print(f"\n{'':44s}{'seconds':>10s}{'cases/s':>10s}{'pairs/s':>10s}")
        print(f"{'lesionbench compare, whole study, 2 cores':44s}{ours:10.1f}{n / ours:10.3f}{2 * n / ours:10.3f}")
        print(f"{'MONAI HD95 + ASD alone (2 threads)':44s}{theirs:10.1f}{n / theirs:10.3f}{2 * n / theirs:10.3f}")
        print(f"\nspeed-up of the whole command over MONAI's two metrics: {theirs / ours:.2f}x")
        print(
            f"largest |difference| to MONAI: HD95 {diffs[:, 0].max():.2e} mm, ASD {diffs[:, 1].max():.2e} mm "
            f"over {len(diffs)} pairs"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
