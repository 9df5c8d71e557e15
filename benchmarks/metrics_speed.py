"""Speed of the metric engine against MONAI (and panoptica, when available) on synthetic cases built in memory.

1. volume: 128 x 512 x 512 voxels (slice axis first) at 2.5 x 0.7 x 0.7 mm, ~20 ellipsoidal lesions of
   varied size; the prediction is shifted, dilated or eroded per lesion, a few lesions are dropped and a
   few false ones added;
2. image: 1024 x 1024 pixels at 0.1 x 0.1 mm with ~30 small lesions, perturbed the same way;
3. image: 1024 x 1024 pixels with 200 small lesions (as in an IDRiD image);
4. fundus stand-in: 2848 x 4288 pixels (IDRiD's full resolution, 1 mm a pixel here) with 200 reference
   lesions and 10,000 small false-positive components of 1-4 pixels scattered over the image, like the
   masks of a training-free segmenter.

Times our complete evaluation (case-level Dice, IoU, HD95, ASD, contour F1, NSD and the lesion-wise
matching with every lesion metric) against MONAI HD95 + ASD alone on the same case (CPU), checks that the
shared values agree, and prints a side-by-side table with the ratio. With ``--panoptica-python`` (a Python
that can ``import panoptica``; panoptica is an optional benchmark dependency, ``pip install
'lesionbench[bench]'`` in an environment of its own, since it pins other numpy/pandas versions), the same
masks are also timed with panoptica's semantic-input evaluator (connected components, naive threshold
matching, instance Dice, IoU, ASSD and HD95) in that interpreter, one process per case.

    .venv/bin/python benchmarks/metrics_speed.py [--repeats 3] [--cases volume,image30,image200,fundus]
        [--panoptica-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

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


def make_fundus(shape, n_lesions, n_false, seed):
    """Fundus stand-in: ``make_case`` lesions (radius 1-10 pixels, 20 missed) and ``n_false`` scattered
    false-positive squares of 1 or 2 pixels a side."""
    ref, pred = make_case(shape, (1.0, 1.0), n_lesions, (1.0, 10.0), 20, 0, seed)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, shape[0] - 2, n_false)
    cols = rng.integers(0, shape[1] - 2, n_false)
    for y, x, side in zip(rows, cols, rng.integers(1, 3, n_false)):
        pred[y : y + side, x : x + side] = True
    return ref, pred


# Run in the panoptica interpreter: times its evaluator on the masks of one case, prints JSON.
PANOPTICA_TIMER = """
import json, sys, time, warnings
import numpy as np
from panoptica import ConnectedComponentsInstanceApproximator, InputType, NaiveThresholdMatching
from panoptica import Panoptica_Evaluator
from panoptica.metrics import Metric

warnings.simplefilter("ignore")
case = np.load(sys.argv[1])
ref, pred, repeats = case["ref"].astype(np.uint8), case["pred"].astype(np.uint8), int(sys.argv[2])
evaluator = Panoptica_Evaluator(
    expected_input=InputType.SEMANTIC,
    instance_approximator=ConnectedComponentsInstanceApproximator(),
    instance_matcher=NaiveThresholdMatching(),
    instance_metrics=[Metric.DSC, Metric.IOU, Metric.ASSD, Metric.HD95],
)
wall, cpu = [], []
for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    evaluator.evaluate(pred, ref, verbose=False)
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps({"wall": min(wall), "cpu": min(cpu)}))
"""


def panoptica_times(python: str, ref, pred, repeats: int) -> tuple[float, float] | None:
    """Best wall and CPU seconds of panoptica on one case, in the interpreter ``python`` (None: failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.npz"
        np.savez(path, ref=ref, pred=pred)
        run = subprocess.run(
            [python, "-c", PANOPTICA_TIMER, str(path), str(repeats)], capture_output=True, text=True, check=False
        )
    if run.returncode != 0:
        print(f"panoptica failed: {run.stderr.strip().splitlines()[-1:]}")
        return None
    times = json.loads(run.stdout.strip().splitlines()[-1])
    return times["wall"], times["cpu"]


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


CASES = {
    "volume": dict(
        label="3D 128x512x512",
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
    "image30": dict(
        label="2D 1024 30 les",
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
    "image200": dict(
        label="2D 1024 200 les",
        shape=(1024, 1024),
        spacing=(0.1, 0.1),
        n_lesions=200,
        radius_mm=(0.1, 0.5),
        n_drop=20,
        n_false=20,
        seed=13,
        tol=0.2,
        dil=0.5,
        reps=5,
    ),
    "fundus": dict(
        label="2D fundus 10k FP",
        fundus=True,
        shape=(2848, 4288),
        spacing=(1.0, 1.0),
        n_lesions=200,
        n_false=10_000,
        seed=5,
        tol=2.0,
        dil=3.0,
        reps=1,
    ),
}


TARGETS = {
    "3D 128x512x512": "target: 1/10 or less",
    "2D 1024 30 les": "target: 1/20 or less",
    "2D 1024 200 les": "target: 10 ms or less",
    "2D fundus 10k FP": "target: far below the 0.7 s a pair such images took",
}


def build(c):
    if c.get("fundus"):
        return make_fundus(c["shape"], c["n_lesions"], c["n_false"], c["seed"])
    return make_case(c["shape"], c["spacing"], c["n_lesions"], c["radius_mm"], c["n_drop"], c["n_false"], c["seed"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs per method on the volume (the image gets 5x as many); best is reported",
    )
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument(
        "--panoptica-python",
        help="a Python interpreter that can import panoptica (optional; its times are printed beside ours)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cases = {name: c for name, c in CASES.items() if name in args.cases.split(",")}
    rows = []
    for c in cases.values():
        ref, pred = build(c)
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
        pan = panoptica_times(args.panoptica_python, ref, pred, repeats) if args.panoptica_python else None
        rows.append((c["label"], ours, theirs, case, hd, asd, agree, len(ours[2].lesions), pan))
    print(
        f"{'case':17s} {'ours wall s':>11s} {'MONAI wall s':>12s} {'ratio':>6s} {'ours CPU s':>10s} "
        f"{'MONAI CPU s':>11s} {'ratio':>6s} {'panoptica CPU s':>15s} {'ratio':>6s}  {'HD95 ours / MONAI':>19s} "
        f"{'ASD ours / MONAI':>17s} agree lesion-rows"
    )
    for name, ours, theirs, case, hd, asd, agree, n_rows, pan in rows:
        pan_cols = f"{pan[1]:15.4f} {ours[1] / pan[1]:6.3f}" if pan else f"{'-':>15s} {'-':>6s}"
        print(
            f"{name:17s} {ours[0]:11.4f} {theirs[0]:12.4f} {ours[0] / theirs[0]:6.3f} {ours[1]:10.4f} "
            f"{theirs[1]:11.4f} {ours[1] / theirs[1]:6.3f} {pan_cols}  {case['hd95']:9.4f}/{hd:<9.4f} "
            f"{case['asd']:8.4f}/{asd:<8.4f} {agree!s:5s} {n_rows}"
        )
    print(
        "ours: complete evaluation (Dice, IoU, HD95, ASD, contour F1, NSD, case-level and lesion-wise); "
        "MONAI: HD95 + ASD only; panoptica: instance Dice, IoU, ASSD, HD95 (best of the same repeats)"
    )
    for name, ours, theirs, *_ in rows:
        print(
            f"{name}: ours {ours[1] * 1e3:.1f} ms CPU, 1/{theirs[0] / ours[0]:.1f} of MONAI's wall time, "
            f"1/{theirs[1] / ours[1]:.1f} of its CPU time ({TARGETS[name]})"
        )
    if not all(r[6] for r in rows):
        raise SystemExit("values disagree with MONAI")


if __name__ == "__main__":
    main()
