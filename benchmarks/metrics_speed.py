"""Speed of the metric engine against MONAI on two synthetic cases built in memory.

1. volume: 128 x 512 x 512 voxels (slice axis first) at 2.5 x 0.7 x 0.7 mm, ~20 ellipsoidal lesions of
   varied size; the prediction is shifted, dilated or eroded per lesion, a few lesions are dropped and a
   few false ones added;
2. image: 1024 x 1024 pixels at 0.1 x 0.1 mm with ~30 small lesions, perturbed the same way.

Times our complete evaluation (case-level Dice, IoU, HD95, ASD, contour F1, NSD and the lesion-wise
matching with every lesion metric) against MONAI HD95 + ASD alone on the same case (CPU), checks that the
shared values agree, and prints a side-by-side table with the ratio.

    .venv/bin/python benchmarks/metrics_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from scipy import ndimage

from lesionbench.metrics import evaluate_case


def _ellipsoid(radii_vox):
    axes = [np.arange(-int(np.ceil(r)), int(np.ceil(r)) + 1) for r in radii_vox]
    grids = np.meshgrid(*axes, indexing="ij")
    return sum((g / r) ** 2 for g, r in zip(grids, radii_vox)) <= 1.0


def _place(mask, blob, centre):
    sl_img, sl_blob = [], []
    for c, s, n in zip(centre, blob.shape, mask.shape):
        lo = c - s // 2
        a, b = max(lo, 0), min(lo + s, n)
        sl_img.append(slice(a, b))
        sl_blob.append(slice(a - lo, b - lo))
    mask[tuple(sl_img)] |= blob[tuple(sl_blob)]


def make_case(shape, spacing, n_lesions, radius_mm, n_drop, n_false, seed):
    """Reference and perturbed prediction (bool arrays) with n_lesions ellipsoids of radius in radius_mm."""
    rng = np.random.default_rng(seed)
    spacing = np.asarray(spacing, float)
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    cube = np.ones((3,) * len(shape), bool)
    for k in range(n_lesions):
        radii = rng.uniform(*radius_mm) * rng.uniform(0.7, 1.3, size=len(shape)) / spacing
        radii = np.maximum(radii, 0.6)
        blob = _ellipsoid(radii)
        centre = [int(rng.integers(s // 10, s - s // 10)) for s in shape]
        _place(ref, blob, centre)
        if k < n_drop:
            continue
        change = k % 3
        p = (
            ndimage.binary_dilation(np.pad(blob, 1), cube)
            if change == 1
            else ndimage.binary_erosion(blob)
            if change == 2 and blob.sum() > 30
            else blob
        )
        shift = rng.integers(-2, 3, size=len(shape))
        _place(pred, p, [c + int(d) for c, d in zip(centre, shift)])
    for _ in range(n_false):
        blob = _ellipsoid(np.maximum(rng.uniform(*radius_mm) * 0.5 / spacing, 0.6))
        _place(pred, blob, [int(rng.integers(s // 10, s - s // 10)) for s in shape])
    return ref, pred


def monai_hd95_asd(ref, pred, spacing):
    from monai.metrics import HausdorffDistanceMetric, SurfaceDistanceMetric

    y = torch.from_numpy(ref[None, None])
    y_pred = torch.from_numpy(pred[None, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd = HausdorffDistanceMetric(include_background=True, percentile=95, directed=False)(
            y_pred, y, spacing=list(spacing)
        ).item()
        asd = SurfaceDistanceMetric(include_background=True, symmetric=True)(y_pred, y, spacing=list(spacing)).item()
    return hd, asd


def best_of(fn, repeats):
    """Best wall-clock and best CPU time (this process) over ``repeats`` runs, and the last result."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs per method on the volume (the image gets 5x as many); best is reported",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cases = {
        "3D 128x512x512": dict(
            shape=(128, 512, 512),
            spacing=(2.5, 0.7, 0.7),
            n_lesions=20,
            radius_mm=(1.5, 18.0),
            n_drop=3,
            n_false=4,
            seed=7,
            tol=2.0,
            dil=3.0,
            reps=1,
        ),
        "2D 1024x1024": dict(
            shape=(1024, 1024),
            spacing=(0.1, 0.1),
            n_lesions=30,
            radius_mm=(0.2, 1.5),
            n_drop=4,
            n_false=5,
            seed=11,
            tol=0.2,
            dil=0.5,
            reps=5,
        ),
    }
    rows = []
    for name, c in cases.items():
        ref, pred = make_case(
            c["shape"], c["spacing"], c["n_lesions"], c["radius_mm"], c["n_drop"], c["n_false"], c["seed"]
        )
        repeats = args.repeats * c["reps"]
        ours = best_of(
            lambda ref=ref, pred=pred, c=c: evaluate_case(
                ref, pred, c["spacing"], tolerance_mm=c["tol"], dilation_mm=c["dil"]
            ),
            repeats,
        )
        theirs = best_of(lambda ref=ref, pred=pred, c=c: monai_hd95_asd(ref, pred, c["spacing"]), repeats)
        case = ours[2].case_row()
        hd, asd = theirs[2]
        agree = abs(case["hd95"] - hd) <= 1e-4 * max(1.0, hd) and abs(case["asd"] - asd) <= 1e-4 * max(1.0, asd)
        rows.append((name, ours, theirs, case, hd, asd, agree, len(ours[2].lesions)))
    print(
        f"{'case':16s} {'ours wall s':>11s} {'MONAI wall s':>12s} {'ratio':>6s} {'ours CPU s':>10s} "
        f"{'MONAI CPU s':>11s} {'ratio':>6s}  {'HD95 ours / MONAI':>19s} {'ASD ours / MONAI':>17s} agree lesion-rows"
    )
    for name, ours, theirs, case, hd, asd, agree, n_rows in rows:
        print(
            f"{name:16s} {ours[0]:11.4f} {theirs[0]:12.4f} {ours[0] / theirs[0]:6.3f} {ours[1]:10.4f} "
            f"{theirs[1]:11.4f} {ours[1] / theirs[1]:6.3f}  {case['hd95']:9.4f}/{hd:<9.4f} "
            f"{case['asd']:8.4f}/{asd:<8.4f} {agree!s:5s} {n_rows}"
        )
    print(
        "ours: complete evaluation (Dice, IoU, HD95, ASD, contour F1, NSD, case-level and lesion-wise); "
        "MONAI: HD95 + ASD only"
    )
    for name, ours, theirs, *_ in rows:
        print(
            f"{name}: ours takes 1/{theirs[0] / ours[0]:.1f} of MONAI's wall time, 1/{theirs[1] / ours[1]:.1f} "
            f"of its CPU time (target: 1/10 or less)"
        )
    if not all(r[6] for r in rows):
        raise SystemExit("values disagree with MONAI")


if __name__ == "__main__":
    main()
