"""Speed of the whole `lesionbench compare` command against MONAI's HD95 + ASD alone, on the same pairs.

**Volumes (default).** CT-sized volumes (512 x 512 x 64 voxels at 0.8 x 0.8 x 2.5 mm, ~30 ellipsoidal
lesions each, the case generator of benchmarks/metrics_speed.py) as an nnU-Net v2 raw data set
(dataset.json, labelsTs/) and two nnU-Net-style prediction folders (model_a: lesions shifted, dilated or
eroded, two dropped, three false ones; model_b: the reference dilated by one voxel in-plane, with nnU-Net's
json files beside both). The volumes are built once for the largest size of the sweep; each size runs on
the first n of them (folders of links), in a fresh output folder.

For each size n of ``--cases`` (default 1 20 80 200), in one run:
1. the whole command on 2 cores: layout check, data stage, evaluation of both models (case-level and
   lesion-wise metrics), every study table, figure, summary/<data set>.json and the HTML report;
2. MONAI HausdorffDistanceMetric(percentile=95) + SurfaceDistanceMetric(symmetric=True) alone on the same 2n
   reference/prediction pairs, including reading the files (nibabel), torch on 2 threads. Each pair is timed
   once and a size's time is the sum over its pairs, so every size compares against the same pair times.
Then: per size the ratio, the marginal cost of an added case (the slope between consecutive sizes) for both,
the fixed cost (the compare of the smallest size, 1 case by default), and the largest HD95 / ASD difference
between the two on the pairs of the largest size (they implement the same definitions, docs/metrics.md).

**Fundus stand-in (``--fundus``).** 2D PNG references the size of IDRiD fundus photographs (4288 x 2848,
``--full-size``; by default half that side, 2144 x 1424) with ~200 small lesions each, and three prediction
folders whose masks hold the lesions perturbed (shifted, dilated, eroded, some dropped) plus thousands of
small false-positive components each (as training-free segmenters produce), 27 images by default
(``--images``). The whole command against MONAI's HD95 + ASD alone on the same pairs (PNG reading included).

    .venv/bin/python benchmarks/compare_speed.py [--cases 1 20 80 200] [--keep DIR]
    .venv/bin/python benchmarks/compare_speed.py --fundus [--full-size] [--images 27] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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

from lesionbench.io.images import read_nifti, read_raster, write_nifti, write_png

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (64, 512, 512)  # slice axis first (prepared layout); files are 512 x 512 x 64
SPACING = (2.5, 0.8, 0.8)
AFFINE = np.diag([0.8, 0.8, 2.5, 1.0])
MODELS = ("model_a", "model_b")
FUNDUS_MODELS = ("seg_a", "seg_b", "seg_c")
FUNDUS_FULL = (2848, 4288)  # rows x columns of an IDRiD photograph


def to_file(mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(mask, (1, 2, 0))).astype(np.uint8)


def nnunet_json(folder: Path, labels: bool) -> None:
    if labels:
        (folder / "dataset.json").write_text(
            json.dumps(
                {
                    "channel_names": {"0": "CT"},
                    "numTraining": 0,
                    "labels": {"background": 0, "lesion": 1},
                    "file_ending": ".nii.gz",
                }
            )
        )
    else:
        for name in ("dataset.json", "plans.json", "predict_from_raw_data_args.json"):
            (folder / name).write_text("{}")


def build_volumes(pool: Path, n_cases: int) -> list[str]:
    """``n_cases`` reference volumes in pool/labels and their predictions in pool/<model>; the case ids."""
    for sub in ("labels", *MODELS):
        (pool / sub).mkdir(parents=True)
    inplane = np.zeros((1, 3, 3), bool)
    inplane[0, 1, :] = inplane[0, :, 1] = True
    ids = []
    for i in range(n_cases):
        ref, pred_a = make_case(SHAPE, SPACING, n_lesions=30, radius_mm=(1.5, 9.0), n_drop=2, n_false=3, seed=i)
        pred_b = ndimage.binary_dilation(ref, inplane)
        cid = f"ct_{i:03d}"
        for folder, mask in (("labels", ref), ("model_a", pred_a), ("model_b", pred_b)):
            write_nifti(to_file(mask), AFFINE, pool / folder / f"{cid}.nii.gz", spacing=(0.8, 0.8, 2.5))
        ids.append(cid)
    return ids


def link_subset(pool: Path, root: Path, ids: list[str]) -> tuple[Path, dict[str, Path]]:
    """An nnU-Net raw data set and prediction folders under ``root`` holding links to the first cases."""
    dataset = root / "nnUNet_raw" / "Dataset900_CTLesions"
    (dataset / "labelsTs").mkdir(parents=True)
    nnunet_json(dataset, labels=True)
    preds = {m: root / f"pred_{m}" for m in MODELS}
    for folder in preds.values():
        folder.mkdir()
        nnunet_json(folder, labels=False)
    for cid in ids:
        (dataset / "labelsTs" / f"{cid}.nii.gz").symlink_to(pool / "labels" / f"{cid}.nii.gz")
        for model, folder in preds.items():
            (folder / f"{cid}.nii.gz").symlink_to(pool / model / f"{cid}.nii.gz")
    return dataset, preds


def run_compare(reference: Path, preds: dict[str, Path], out: Path, extra: list[str]) -> tuple[float, float]:
    """(wall-clock, CPU) seconds of the whole `lesionbench compare` command on 2 cores; CPU = user + system
    time of the command and every process it started (Snakemake and its jobs)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "lesionbench.cli", "compare", "--reference", str(reference)]
    for model, folder in preds.items():
        cmd += ["--predictions", f"{model}={folder}"]
    cmd += ["--out", str(out), "--cores", "2", *extra]
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, children_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"lesionbench compare failed:\n{proc.stderr[-4000:]}")
    return seconds, cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def monai_pairs(pairs, read, spacing_of) -> dict:
    """{(case_id, model): (hd95, asd, wall seconds, CPU seconds)}: MONAI's two metrics on each pair, reading
    both files (torch on 2 threads; MONAI imported and warmed up first)."""
    torch.set_num_threads(2)
    tiny = np.zeros((1, 4, 4), bool)
    tiny[0, 1:3, 1:3] = True
    monai_hd95_asd(tiny, tiny, (1.0, 1.0, 1.0))
    out = {}
    for cid, model, ref_path, pred_path in pairs:
        t0, c0 = time.perf_counter(), time.process_time()
        ref, pred = read(ref_path), read(pred_path)
        hd, asd = monai_hd95_asd(ref, pred, spacing_of(ref))
        out[(cid, model)] = (hd, asd, time.perf_counter() - t0, time.process_time() - c0)
    return out


def largest_differences(out: Path, models, monai: dict) -> tuple[float, float, int]:
    diffs = []
    for model in models:
        (path,) = (out / "metrics").glob(f"*/{model}/seed0/per_case.csv")  # one data set, named by its folder
        table = pd.read_csv(path, dtype={"case_id": str})
        for r in table.itertuples():
            hd, asd = monai[(r.case_id, model)][:2]
            diffs.append((abs(r.hd95 - hd), abs(r.asd - asd)))
    d = np.asarray(diffs)
    return float(d[:, 0].max()), float(d[:, 1].max()), len(d)


def read_volume(path: Path) -> np.ndarray:
    return np.asarray(read_nifti(path)[0]) != 0


def volume_sweep(root: Path, sizes: list[int]) -> None:
    pool = root / "pool"
    t0 = time.perf_counter()
    ids = build_volumes(pool, max(sizes))
    print(f"built {max(sizes)} volumes 512x512x64 and 2 prediction folders in {time.perf_counter() - t0:.1f} s")
    pairs = [(c, m, pool / "labels" / f"{c}.nii.gz", pool / m / f"{c}.nii.gz") for c in ids for m in MODELS]
    t0 = time.perf_counter()
    file_spacing = tuple(SPACING[a] for a in (1, 2, 0))  # the files are 512 x 512 x 64
    monai = monai_pairs(pairs, read_volume, lambda _: file_spacing)
    print(f"MONAI HD95 + ASD on {len(pairs)} pairs (files read) in {time.perf_counter() - t0:.1f} s", flush=True)

    rows = []
    for n in sizes:
        run_root = root / f"cases_{n}"
        dataset, preds = link_subset(pool, run_root, ids[:n])
        wall, cpu = run_compare(dataset, preds, run_root / "out", ["--tolerance-mm", "2", "--dilation-mm", "3"])
        theirs = [sum(monai[(c, m)][k] for c in ids[:n] for m in MODELS) for k in (2, 3)]
        rows.append((n, (wall, cpu), theirs))
        print(f"  {n} cases: compare {wall:.1f} s ({cpu:.1f} s CPU), MONAI {theirs[0]:.1f} s ({theirs[1]:.1f} s CPU)")
        last_out = run_root / "out"

    for k, what in ((0, "wall-clock seconds"), (1, "CPU seconds (user + system, all processes)")):
        print(f"\n{what}")
        print(
            f"{'cases':>6s}{'compare':>10s}{'MONAI':>10s}{'ratio':>8s}"
            f"{'compare/added case':>20s}{'MONAI/added case':>18s}{'slope ratio':>13s}"
        )
        prev = None
        for n, ours, theirs in rows:
            line = f"{n:6d}{ours[k]:10.1f}{theirs[k]:10.1f}{theirs[k] / ours[k]:7.2f}x"
            if prev is not None:
                dn = n - prev[0]
                s_ours, s_theirs = (ours[k] - prev[1][k]) / dn, (theirs[k] - prev[2][k]) / dn
                line += f"{s_ours:20.3f}{s_theirs:18.3f}{s_ours / s_theirs:13.3f}"
            print(line)
            prev = (n, ours, theirs)
        print(f"fixed cost (compare of {rows[0][0]} case{'s' if rows[0][0] > 1 else ''}): {rows[0][1][k]:.1f} s")
    hd, asd, n_pairs = largest_differences(last_out, MODELS, monai)
    print(f"largest |difference| to MONAI: HD95 {hd:.2e} mm, ASD {asd:.2e} mm over {n_pairs} pairs")


def _discs(shape, centres, radii) -> np.ndarray:
    """A mask of filled discs (one bounding box each: no full-image distance map per disc)."""
    mask = np.zeros(shape, bool)
    for (r, c), rad in zip(centres, radii):
        k = int(np.ceil(rad))
        r0, r1, c0, c1 = max(r - k, 0), min(r + k + 1, shape[0]), max(c - k, 0), min(c + k + 1, shape[1])
        yy, xx = np.ogrid[r0:r1, c0:c1]
        mask[r0:r1, c0:c1] |= (yy - r) ** 2 + (xx - c) ** 2 <= rad * rad
    return mask


def fundus_case(shape, seed: int, n_lesions: int, n_false: int):
    """A reference with ``n_lesions`` small lesions inside a disc, and three predictions: the lesions shifted /
    dilated / eroded with some dropped, plus ``n_false`` small false-positive specks each."""
    rng = np.random.default_rng(seed)
    scale = shape[1] / FUNDUS_FULL[1]
    inside = lambda n: np.stack(  # noqa: E731 - centres within the central 80% of the image
        [rng.integers(shape[0] // 10, shape[0] * 9 // 10, n), rng.integers(shape[1] // 10, shape[1] * 9 // 10, n)], 1
    )
    centres = inside(n_lesions)
    radii = np.maximum(rng.lognormal(np.log(6 * scale + 1), 0.6, n_lesions), 1.0)
    ref = _discs(shape, centres, radii)
    preds = []
    for k in range(len(FUNDUS_MODELS)):
        keep = rng.random(n_lesions) > 0.1
        shift = rng.integers(-2, 3, (n_lesions, 2))
        grow = (k - 1) * 1.0 + rng.normal(0, 0.5, n_lesions)  # eroded / as is / dilated on average
        pred = _discs(shape, (centres + shift)[keep], np.maximum(radii + grow, 0.8)[keep])
        specks = inside(n_false)
        size = rng.integers(1, 4, n_false)  # 1x1 .. 3x3 pixel specks
        for dr in range(3):
            for dc in range(3):
                sel = (dr < size) & (dc < size)
                pred[specks[sel, 0] + dr, specks[sel, 1] + dc] = True
        preds.append(pred)
    return ref, preds


def fundus(root: Path, images: int, full_size: bool, n_lesions: int, n_false: int) -> None:
    shape = FUNDUS_FULL if full_size else (FUNDUS_FULL[0] // 2, FUNDUS_FULL[1] // 2)
    refs = root / "references"
    refs.mkdir(parents=True)
    preds = {m: root / m for m in FUNDUS_MODELS}
    for folder in preds.values():
        folder.mkdir()
    t0 = time.perf_counter()
    counts = []
    for i in range(images):
        ref, masks = fundus_case(shape, 1000 + i, n_lesions, n_false)
        cid = f"IDRiD_{55 + i:02d}"
        write_png(ref.astype(np.uint8) * 255, refs / f"{cid}.png")
        for model, mask in zip(FUNDUS_MODELS, masks):
            write_png(mask.astype(np.uint8) * 255, preds[model] / f"{cid}.png")
        counts.append((ndimage.label(ref, np.ones((3, 3)))[1], ndimage.label(masks[0], np.ones((3, 3)))[1]))
    c = np.asarray(counts)
    print(
        f"built {images} fundus stand-ins {shape[1]}x{shape[0]}: {c[:, 0].sum()} reference lesions, "
        f"~{int(c[:, 1].mean())} predicted components per mask, in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    out = root / "out"
    wall, cpu = run_compare(refs, preds, out, ["--tolerance-mm", "2", "--dilation-mm", "3"])
    pairs = [(p.stem, m, p, preds[m] / p.name) for p in sorted(refs.glob("*.png")) for m in FUNDUS_MODELS]
    monai = monai_pairs(pairs, lambda p: read_raster(p) != 0, lambda _: (1.0, 1.0))
    theirs = [sum(v[k] for v in monai.values()) for k in (2, 3)]
    print(f"\n{'':44s}{'wall s':>9s}{'CPU s':>9s}{'pairs/s':>9s}")
    print(f"{'lesionbench compare, whole study, 2 cores':44s}{wall:9.1f}{cpu:9.1f}{len(pairs) / wall:9.2f}")
    name = "MONAI HD95 + ASD alone (PNG reading incl.)"
    print(f"{name:44s}{theirs[0]:9.1f}{theirs[1]:9.1f}{len(pairs) / theirs[0]:9.2f}")
    print(
        f"\nspeed-up of the whole command over MONAI's two metrics: {theirs[0] / wall:.2f}x wall-clock, "
        f"{theirs[1] / cpu:.2f}x CPU"
    )
    hd, asd, n_pairs = largest_differences(out, FUNDUS_MODELS, monai)
    print(f"largest |difference| to MONAI: HD95 {hd:.2e} mm, ASD {asd:.2e} mm over {n_pairs} pairs")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, nargs="+", default=[1, 20, 80, 200], help="volume counts of the sweep")
    ap.add_argument("--fundus", action="store_true", help="the 2D fundus stand-in instead of the volume sweep")
    ap.add_argument("--full-size", action="store_true", help="fundus images at 4288 x 2848 (default: half side)")
    ap.add_argument("--images", type=int, default=27, help="fundus images (default 27, the IDRiD test set)")
    ap.add_argument("--lesions", type=int, default=200, help="reference lesions per fundus image")
    ap.add_argument("--false-components", type=int, default=4000, help="false-positive specks per fundus mask")
    ap.add_argument("--keep", type=Path, help="build and run in this folder and keep it (default: a temp folder)")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="compare_speed_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if args.fundus:
            fundus(root, args.images, args.full_size, args.lesions, args.false_components)
        else:
            volume_sweep(root, sorted(set(args.cases)))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
