"""Peak memory of preparing one large LiTS-sized CT volume (target: under 4 GB).

Builds a synthetic CT volume of 512 x 512 x 900 int16 voxels (the upper range of LiTS; 0.47 GB as int16)
and its label map as NIfTI files in the MSD layout, then, in a fresh Python process per configuration, runs
exactly what the ``prepare`` rule runs for one case - the LiTS adapter's ``read_case`` followed by
``lesionbench.data.prepare.prepare_case`` and ``save_case`` - and reports that process's peak resident
memory (``ru_maxrss``), beside the 4 GB target. Building the input happens in its own process, so it does
not count.

    .venv/bin/python benchmarks/prepare_memory.py                 # 512 x 512 x 900, window and zscore
    .venv/bin/python benchmarks/prepare_memory.py --slices 300    # a quicker check

Each configuration takes tens of seconds on one core (most of it gzip decompression and writing 1 GB of
float32); needs about 3 GB of free disk in the work folder (default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MB = 4096
ROOT = Path(__file__).resolve().parents[1]

BUILD = r"""
import sys, numpy as np, nibabel as nib
from pathlib import Path
root, size, slices = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
yy, xx = np.mgrid[:size, :size]
body = ((yy - size / 2) / (0.42 * size)) ** 2 + ((xx - size / 2) / (0.47 * size)) ** 2 < 1
liver = ((yy - 0.45 * size) / (0.18 * size)) ** 2 + ((xx - 0.35 * size) / (0.2 * size)) ** 2 < 1
ct = np.full((size, size, slices), -1000, np.int16)
seg = np.zeros((size, size, slices), np.uint8)
for k in range(slices):
    plane = np.where(body, 40, -1000).astype(np.int16)
    plane[liver] = 60
    plane += rng.integers(-20, 20, (size, size), dtype=np.int16)
    ct[:, :, k] = plane
    seg[:, :, k][liver] = 1
    if k % 60 < 12:
        r = 2 + k % 60
        seg[:, :, k][((yy - 0.45 * size) ** 2 + (xx - 0.33 * size) ** 2) < r * r] = 2
aff = np.diag([0.7, 0.7, 1.0, 1.0])
for name, data in (("imagesTr", ct), ("labelsTr", seg)):
    img = nib.Nifti1Image(data, aff)
    img.header.set_zooms((0.7, 0.7, 1.0))
    (root / name).mkdir(parents=True, exist_ok=True)
    nib.save(img, str(root / name / "liver_900.nii.gz"))
"""

RUN = r"""
import json, resource, sys, time
from pathlib import Path

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

root, out, normalization = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
import numpy as np
from lesionbench.data.sources import lits
from lesionbench.data.prepare import prepare_case
from lesionbench.io.cases import save_case
base = rss_mb()
t0 = time.perf_counter()
row = {"case_id": "liver_900", "image": str(root / "imagesTr" / "liver_900.nii.gz"),
       "mask": str(root / "labelsTr" / "liver_900.nii.gz"), "official_split": "train"}
pre = {"normalization": normalization, "window": [-100, 200], "resize": None}
raw = lits.read_case(row, {"labels": {"lesion": [2]}}, root)
after_read = rss_mb()
t1 = time.perf_counter()
case = prepare_case(raw, "lits", pre)
after_prepare = rss_mb()
del raw
save_case(case, out)
t2 = time.perf_counter()
print(json.dumps({"imports_mb": base, "read_case_mb": after_read, "prepare_case_mb": after_prepare,
                  "peak_mb": rss_mb(), "read_s": t1 - t0, "prepare_save_s": t2 - t1,
                  "shape": list(case.image.shape), "lesion_voxels": int(case.mask.sum())}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512, help="in-plane size (default 512)")
    ap.add_argument("--slices", type=int, default=900, help="number of slices (default 900)")
    ap.add_argument(
        "--normalization",
        nargs="+",
        default=["window", "zscore"],
        help="preprocessing.normalization values to measure (default: window zscore)",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="where to build the volume (default: a temp dir)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lesionbench-mem-", dir=args.workdir))
    env_python = sys.executable
    try:
        t0 = time.perf_counter()
        subprocess.run(
            [env_python, "-c", BUILD, str(work / "Task03_Liver"), str(args.size), str(args.slices)], check=True
        )
        voxels = args.size * args.size * args.slices
        print(
            f"built a {args.size} x {args.size} x {args.slices} int16 CT volume ({voxels * 2 / 2**20:.0f} MB "
            f"as int16, {voxels * 4 / 2**20:.0f} MB as float32) in {time.perf_counter() - t0:.0f} s"
        )
        print(
            f"{'normalization':<14}{'after imports':>14}{'read_case':>11}{'prepare_case':>14}{'peak RSS':>10}"
            f"{'target':>9}  result"
        )
        worst = 0.0
        for norm in args.normalization:
            out = work / f"prepared-{norm}"
            proc = subprocess.run(
                [env_python, "-c", RUN, str(work / "Task03_Liver"), str(out), norm],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            worst = max(worst, r["peak_mb"])
            verdict = "ok" if r["peak_mb"] < TARGET_MB else "OVER"
            print(
                f"{norm:<14}{r['imports_mb']:>11.0f} MB{r['read_case_mb']:>8.0f} MB{r['prepare_case_mb']:>11.0f} MB"
                f"{r['peak_mb']:>7.0f} MB{TARGET_MB:>6} MB  {verdict} (read {r['read_s']:.0f} s, prepare+save "
                f"{r['prepare_save_s']:.0f} s, prepared shape {tuple(r['shape'])})"
            )
            shutil.rmtree(out, ignore_errors=True)
        print(
            f"peak RSS {worst / 1024:.2f} GB against the {TARGET_MB / 1024:.0f} GB target: "
            f"{'within' if worst < TARGET_MB else 'OVER'}"
        )
        return 0 if worst < TARGET_MB else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
