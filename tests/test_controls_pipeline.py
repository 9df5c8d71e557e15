"""The controls through the real rules on a tiny data set: calibrated to one Dice, the planted boundary effect
found by the same statistics and verdict as the study's, and no effect found between the negative replicates.

The data set is a folder data set made here (docs/controls.md, "What the controls must show"): 2D images with,
per case, one large irregular lesion, two medium ones and several small ones, resolved well enough that
the geometry of docs/controls.md applies. Only the controls' targets are requested: no model is trained.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import ndimage

from conftest import copy_workflow
from lesionbench.data.synthetic import irregular_blob
from lesionbench.io.images import write_png

N_CASES, N_TEST, SIZE = 22, 16, 96
NEGATIVE = ("replicate_a", "replicate_b")
POSITIVE = ("offset", "smoothing", "protrusions", "fragmentation", "undersegmentation")


def make_folder_dataset(root: Path) -> None:
    rng = np.random.default_rng(20261130)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = []
    for i in range(N_CASES):
        mask = np.zeros((SIZE, SIZE), bool)
        for lo, hi in [(9, 13)] + [(4, 6)] * 2 + [(1.3, 2.6)] * 5:
            for _ in range(100):  # place each lesion apart from the others
                centre = rng.uniform(12, SIZE - 12, 2)
                r = rng.uniform(lo, hi)
                blob = irregular_blob((SIZE, SIZE), centre, (r, r * rng.uniform(0.8, 1.25)), rng)
                if not (blob & ndimage.binary_dilation(mask, iterations=4)).any():
                    mask |= blob
                    break
        image = np.clip(100 + 80 * mask + rng.normal(0, 10, mask.shape), 0, 255).astype(np.uint8)
        write_png(image, root / "images" / f"case{i:02d}.png")
        write_png(mask.astype(np.uint8), root / "masks" / f"case{i:02d}.png")
        rows.append({"case_id": f"case{i:02d}", "split": "test" if i < N_TEST else "train"})
    pd.DataFrame(rows).to_csv(root / "split.csv", index=False)


@pytest.fixture(scope="module")
def controls_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("controls")
    workdir = copy_workflow(base / "lesionbench")
    make_folder_dataset(base / "blobs")
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["datasets"] = {
        "blobs": {
            "source": "folder",
            "modality": "2D test blobs",
            "path": str(base / "blobs"),
            "split": {"test_fraction": 0.3, "val_fraction": 0.2, "salt": "blobs"},
            "preprocessing": {"normalization": "zscore", "resize": None},
            "evaluation": {"contour_tolerance_mm": 1.0, "lesion_dilation_mm": 2.0},
        }
    }
    config["statistics"]["bootstrap_resamples"] = 500
    (workdir / "controls.yaml").write_text(yaml.safe_dump(config))
    groups = ("positive", "negative")
    targets = ["results/controls/calibration.csv"] + [
        f"results/controls/{g}/{t}.csv"
        for g in groups
        for t in (
            "overall_metrics",
            "size_stratified_metrics",
            "bootstrap_directional_robustness",
            "study_summary",
            "claim_check",
        )
    ]
    env = dict(
        os.environ,
        PYTHONPATH=str(workdir / "src"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "2",
            "--configfile",
            str(workdir / "controls.yaml"),
            "--",
            *targets,
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    assert "rule train" not in proc.stdout + proc.stderr  # the controls need no trained model
    return workdir / "results" / "controls"


def read(run, name, group=None):
    return pd.read_csv(run / (f"{group}/{name}.csv" if group else f"{name}.csv"))


def test_controls_are_tied_under_dice(controls_run):
    cal = read(controls_run, "calibration")
    assert set(cal.control) == set(POSITIVE + NEGATIVE)
    assert (cal.dice - 0.85).abs().max() <= 0.002 and cal.within_tolerance.all()
    dice = pd.concat([read(controls_run, "overall_metrics", g) for g in ("positive", "negative")])
    dice = dice[(dice.dataset == "blobs") & (dice.metric == "dice")]
    assert len(dice) == 7 and dice.value.max() - dice.value.min() <= 0.005
    # the evaluation's Dice is the one the calibration computed
    merged = dice.merge(cal, left_on="model", right_on="control")
    np.testing.assert_allclose(merged.value_x if "value_x" in merged else merged.value, merged.dice, atol=1e-9)


def common_hd95(run, quartile):
    t = read(run, "size_stratified_metrics", "positive")
    t = t[(t.dataset == "blobs") & (t.lesion_set == "common") & (t.quartile == quartile) & (t.metric == "hd95")]
    assert not t.insufficient_lesions.any(), t
    return t.set_index("model")["value"]


def test_expected_hd95_order_reverses_from_large_to_small_lesions(controls_run):
    q1, q4 = common_hd95(controls_run, "Q1"), common_hd95(controls_run, "Q4")
    # small lesions: smoothing inflates each to its blur size, the shape errors stay within the lesion
    assert q1.idxmax() == "smoothing", q1
    assert q1["smoothing"] > max(q1["fragmentation"], q1["undersegmentation"], q1["protrusions"]) + 0.5, q1
    # large lesions: the localized errors (deep crack edges, a cut cap) have the largest worst-case distance,
    # the smoothed boundary the smallest
    assert min(q4["fragmentation"], q4["undersegmentation"]) > max(q4["smoothing"], q4["offset"], q4["protrusions"]), q4
    assert q4.idxmin() == "smoothing", q4
    # so smoothing and fragmentation swap places between Q4 and Q1
    assert q4["smoothing"] < q4["fragmentation"] and q1["smoothing"] > q1["fragmentation"]


def test_boundary_divergence_findings_supported(controls_run):
    claim = read(controls_run, "claim_check", "positive")
    claim = claim[claim.dataset == "blobs"].set_index("finding")
    assert claim.loc["dice_tie", "verdict"] == "supported", claim.loc["dice_tie"].to_dict()
    assert claim.loc["q1_boundary_separation", "verdict"] == "supported", claim.loc["q1_boundary_separation"].to_dict()
    summary = read(controls_run, "study_summary", "positive")
    summary = summary[summary.dataset == "blobs"]
    common = summary[summary.lesion_set == "common"].set_index("setting")
    every = summary[(summary.setting == "all_cases") & (summary.lesion_set == "all")].iloc[0]
    assert common.loc["Q1", "top_models"].count(" > ") == len(POSITIVE) - 1  # every control is a top model
    # the mean distance separates the controls far more on small lesions than on large ones or over all cases
    assert common.loc["Q1", "asd_spread_pct"] > common.loc["Q4", "asd_spread_pct"]
    assert common.loc["Q1", "asd_spread_pct"] >= 2 * every["asd_spread_pct"]
    assert common.loc["Q1", "hd95_spread_pct"] > every["hd95_spread_pct"]


def test_negative_control_finds_no_difference(controls_run):
    boot = read(controls_run, "bootstrap_directional_robustness", "negative")
    boot = boot[(boot.dataset == "blobs") & (boot.stratum == "overall") & (boot.lesion_set == "all")]
    delineation = boot[boot.metric.isin(["dice", "iou", "hd95", "asd", "contour_f1", "nsd"])]
    assert len(delineation) == 6
    assert (delineation.sign_share < 0.95).all(), delineation[["metric", "sign_share"]]
    assert not delineation.ci_excludes_zero.any()
    claim = read(controls_run, "claim_check", "negative")
    assert not ((claim.verdict == "supported") & (claim.finding != "dice_tie")).any(), claim
