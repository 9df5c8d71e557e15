"""`lesionbench compare`: reference and prediction folders as other tools leave them, through the command.

End-to-end runs (nnU-Net v2 layout, PNG masks, one model, the study's own predictions) check the tables
against the metric engine called directly on the same files; the bad inputs are checked before anything
is written, or by the rule that reads the file, each naming the case and file.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from compare_fixtures import AFFINE, nnunet_fixture, png_fixture, volume_cases
from conftest import ROOT, copy_workflow
from lesionbench.cli import main as lesionbench
from lesionbench.data.lesions import LesionError
from lesionbench.data.sources import SourceError
from lesionbench.data.sources.references import discover
from lesionbench.data.steps import acquire as acquire_step
from lesionbench.data.steps import lesions as lesions_step
from lesionbench.data.steps import prepare as prepare_step
from lesionbench.data.steps import split as split_step
from lesionbench.evaluation import PER_CASE_COLUMNS, PER_LESION_COLUMNS
from lesionbench.io.images import write_nifti
from lesionbench.metrics.case import evaluate_case

CASE_METRICS = [
    "dice",
    "iou",
    "hd95",
    "asd",
    "contour_f1",
    "nsd",
    "n_ref_lesions",
    "n_hit_lesions",
    "n_fp_lesions",
    "ref_voxels",
    "pred_voxels",
]
TABLES = [
    "overall_metrics.csv",
    "size_stratified_metrics.csv",
    "small_lesion_metrics.csv",
    "ranking_reversals.csv",
    "ranking_reversal_summary.csv",
    "bootstrap_directional_robustness.csv",
    "dataset_summary.csv",
]
FIGURES = [
    "overall_vs_small_lesion_comparison.png",
    "quartile_disagreement.png",
    "ranking_reversal_matrix.png",
    "qualitative_small_lesion_examples.png",
]


def compare(*args) -> int:
    return lesionbench(["compare", *map(str, args), "--cores", "2"])


def nifti_prepared(path):
    """A NIfTI mask in the prepared layout (slice axis first) and its spacing, read with nibabel alone."""
    img = nib.load(str(path))
    return np.transpose(np.asarray(img.dataobj), (2, 0, 1)), tuple(float(img.header.get_zooms()[a]) for a in (2, 0, 1))


def expected_rows(ref, pred, spacing, **settings):
    ev = evaluate_case(ref, pred, spacing, **settings)
    return ev.case_row(), ev.lesion_rows()


def check_tables(out, dataset, model, expected):
    """metrics/<data set>/<model>/seed0/ tables equal the metric engine's values on the same masks."""
    folder = out / "metrics" / dataset / model / "seed0"
    per_case = pd.read_csv(folder / "per_case.csv", dtype={"case_id": str})
    per_lesion = pd.read_csv(folder / "per_lesion.csv", dtype={"case_id": str})
    assert list(per_case.columns) == PER_CASE_COLUMNS and list(per_lesion.columns) == PER_LESION_COLUMNS
    assert sorted(per_case["case_id"]) == sorted(expected)
    for cid, (row, lesion_rows) in expected.items():
        got = per_case[per_case["case_id"] == cid].iloc[0]
        for k in CASE_METRICS:
            assert got[k] == pytest.approx(row[k], rel=1e-12, abs=1e-12), (model, cid, k)
        assert not got["missing_prediction"]
        lesions = per_lesion[per_lesion["case_id"] == cid]
        assert len(lesions) == len(lesion_rows)
        for r in lesion_rows:
            mine = lesions[(lesions["kind"] == r["kind"]) & (lesions["lesion_id"] == r["lesion_id"])].iloc[0]
            for k in ("voxels", "detected", "dice", "hd95", "asd", "contour_f1"):
                assert mine[k] == pytest.approx(r[k], rel=1e-12, abs=1e-12), (model, cid, r["lesion_id"], k)
    return per_case


def check_summary(out, dataset, model, per_case):
    summary = json.loads((out / "summary" / f"{dataset}.json").read_text())["models"][model]
    overall = pd.read_csv(out / "overall_metrics.csv")
    overall = overall[(overall["model"] == model) & (overall["dataset"] == dataset)].set_index("metric")["value"]
    for m in ("dice", "iou", "hd95", "asd", "contour_f1", "nsd"):
        assert summary["mean"][m] == pytest.approx(per_case[m].mean(), rel=1e-12)
        assert summary["mean"][m] == pytest.approx(overall[m], rel=1e-12)
    recall = per_case["n_hit_lesions"].sum() / per_case["n_ref_lesions"].sum()
    assert summary["lesion_recall"] == pytest.approx(recall) == pytest.approx(overall["lesion_recall"])
    assert summary["fp_per_case"] == pytest.approx(per_case["n_fp_lesions"].sum() / len(per_case))
    assert summary["fp_per_case"] == pytest.approx(overall["fp_per_case"])
    assert set(summary["cases"]) == set(per_case["case_id"])


def check_outputs(out, models, dataset):
    for name in TABLES:
        table = pd.read_csv(out / name)
        assert len(table) > 0, name
        # a lesion set without a lesion in a stratum keeps its row with n_lesions 0 and an empty value
        empty = table.isna().any(axis=1)
        assert not empty.any() or (table.loc[empty, "n_lesions"] == 0).all(), name
    for name in FIGURES:
        assert (out / "figures" / name).stat().st_size > 5_000, name
    assert (out / "report.html").stat().st_size > 50_000
    overall = pd.read_csv(out / "overall_metrics.csv")
    assert set(overall["model"]) == set(models)
    split = pd.read_csv(out / "data" / dataset / "split.csv")
    assert set(split["split"]) == {"test"}
    assert not (out / "models").exists()  # nothing trained


@pytest.mark.slow
def test_nnunet_layout_end_to_end(tmp_path, capsys):
    """Also what the command prints: a few lines ending on the answer (models with CIs, Q1 detection and
    delineation, the verdict, the report), Snakemake's output in the log."""
    dataset, preds, refs = nnunet_fixture(tmp_path)
    out = tmp_path / "out"
    assert (
        compare(
            "--reference",
            dataset,
            "--predictions",
            f"nnunet_3d={preds['nnunet_3d']}",
            "--predictions",
            f"nnunet_2d={preds['nnunet_2d']}",
            "--images",
            dataset / "imagesTs",
            "--out",
            out,
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) <= 30, printed
    assert printed[-2] == f"Report: {out / 'report.html'}" and printed[-1].startswith("Tables: ")
    text = "\n".join(printed)
    assert printed[2] == "Dataset501_Lesions, 4 cases:" and "Dice [95% CI]" in printed[3]
    assert "Q1 recall" in printed[3] and "Q1 HD95 mm (common)" in printed[3]
    assert "Verdict (Dataset501_Lesions):" in text and "dice_tie" in text and "pooled" not in text
    assert (out / "answer" / "summary.txt").read_text().rstrip() in text
    assert "Building DAG of jobs" in (out / "logs" / "snakemake.log").read_text()
    assert "Building DAG" not in text
    name = "Dataset501_Lesions"  # the data set is named after the reference folder
    check_outputs(out, ["nnunet_3d", "nnunet_2d"], name)
    for model, folder in preds.items():
        expected = {}
        for cid in refs:
            ref, spacing = nifti_prepared(dataset / "labelsTs" / f"{cid}.nii.gz")
            pred, _ = nifti_prepared(folder / f"{cid}.nii.gz")
            assert spacing == pytest.approx((2.5, 0.8, 0.8))
            expected[cid] = expected_rows(ref == 1, pred != 0, spacing, tolerance_mm=1.0, dilation_mm=2.0)
        per_case = check_tables(out, name, model, expected)
        check_summary(out, name, model, per_case)
    # one data set: no pooled rows anywhere
    for table in (
        "overall_metrics.csv",
        "claim_check.csv",
        "bootstrap_directional_robustness.csv",
        "study_summary.csv",
    ):
        assert set(pd.read_csv(out / table)["dataset"]) == {name}, table
    # the report opens on the answer, as tables, and says nothing of training or controls
    landing = re.search(r'var workflow_desc = "(.*?)";\n', (out / "report.html").read_text()).group(1)
    text = landing[landing.index("</style>") :]  # after the page's layout fix, the text opens on the run
    assert text.index("<strong>lesionbench compare</strong>") < text.index("<table")
    assert landing.count("<table") == 2 and "nnunet_3d" in landing and "dice_tie" in landing
    assert text.index("The models.") < text.index("The verdict") < text.index("Read on in")
    assert "Controls" not in landing and "raining" not in landing and "data:text/csv" not in landing
    # nnU-Net's json files beside the predictions are neither cases nor warned about
    log = (out / "logs" / "evaluate" / name / "nnunet_3d" / "seed0.log").read_text()
    assert "match no test case" not in log


@pytest.mark.slow
def test_png_end_to_end_and_snakemake_on_the_written_config(tmp_path):
    refs_dir, preds, refs = png_fixture(tmp_path)
    out = tmp_path / "out"
    assert (
        compare(
            "--reference",
            refs_dir,
            "--predictions",
            f"model_a={preds['model_a']}",
            "--predictions",
            f"model_b={preds['model_b']}",
            "--spacing",
            0.5,
            0.25,
            "--tolerance-mm",
            0.5,
            "--dilation-mm",
            1.0,
            "--out",
            out,
        )
        == 0
    )
    check_outputs(out, ["model_a", "model_b"], "png_refs")
    for model, folder in preds.items():
        expected = {
            cid: expected_rows(
                ref > 0,
                np.asarray(Image.open(folder / f"{cid}.png")) > 0,
                (0.5, 0.25),
                tolerance_mm=0.5,
                dilation_mm=1.0,
            )
            for cid, ref in refs.items()
        }
        check_summary(out, "png_refs", model, check_tables(out, "png_refs", model, expected))
    # the written config alone, run by snakemake from another checkout copy, gives the same tables
    work = copy_workflow(tmp_path / "wf")
    again = tmp_path / "again"
    env = dict(os.environ, PYTHONPATH=str(work / "src"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "2",
            "--configfile",
            str(out / "config.yaml"),
            "--config",
            f"results={again}",
            f"figures={again / 'figures'}",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name in [
        "metrics/png_refs/model_a/seed0/per_case.csv",
        "metrics/png_refs/model_b/seed0/per_lesion.csv",
        "overall_metrics.csv",
        "size_stratified_metrics.csv",
        "ranking_reversals.csv",
        "bootstrap_directional_robustness.csv",
    ]:
        pd.testing.assert_frame_equal(pd.read_csv(out / name), pd.read_csv(again / name), check_exact=True)
    assert (
        json.loads((out / "summary" / "png_refs.json").read_text())["models"]
        == json.loads((again / "summary" / "png_refs.json").read_text())["models"]
    )


@pytest.mark.slow
def test_one_prediction_folder_says_there_is_nothing_to_compare(tmp_path):
    dataset, preds, _ = nnunet_fixture(tmp_path, n=3)
    out = tmp_path / "out"
    assert (
        compare("--reference", dataset / "labelsTs", "--predictions", f"only={preds['nnunet_3d']}", "--out", out) == 0
    )
    summary = json.loads((out / "summary" / "Dataset501_Lesions.json").read_text())
    assert list(summary["models"]) == ["only"] and "nothing to compare" in summary["comparison"]
    assert len(pd.read_csv(out / "bootstrap_directional_robustness.csv")) == 0  # no model pair
    assert (out / "figures" / "ranking_reversal_matrix.png").is_file()
    assert set(pd.read_csv(out / "overall_metrics.csv")["model"]) == {"only"}


@pytest.mark.slow
def test_values_equal_the_study_evaluation_of_trained_predictions(tiny_run, tmp_path):
    """The study's own predictions of synthetic_ct (four trained models), given to lesionbench compare as
    folders, score exactly as the study's evaluate rule scored them."""
    run = tiny_run[0] / "results"
    dataset = "synthetic_ct"
    split = pd.read_csv(run / "data" / dataset / "split.csv", dtype={"case_id": str})
    test_ids = sorted(split.loc[split["split"] == "test", "case_id"])
    refs = tmp_path / "refs"
    refs.mkdir()
    for cid in test_ids:
        shutil.copy(run / "data" / dataset / "raw" / "masks" / f"{cid}.nii.gz", refs)
    models = ["unet", "resunet", "attention_unet", "hybrid_transformer"]
    args = []
    for m in models:
        args += ["--predictions", f"{m}_copy={run / 'predictions' / dataset / m / 'seed0'}"]
    out = tmp_path / "out"
    assert (
        compare(
            "--reference",
            refs,
            *args,
            "--lesion-labels",
            1,
            "--ignore-labels",
            2,
            "--tolerance-mm",
            2.0,
            "--dilation-mm",
            3.0,
            "--min-component-voxels",
            3,
            "--out",
            out,
        )
        == 0
    )
    for m in models:
        study = pd.read_csv(run / "metrics" / dataset / m / "seed0" / "per_case.csv", dtype={"case_id": str})
        ours = pd.read_csv(out / "metrics" / "refs" / f"{m}_copy" / "seed0" / "per_case.csv", dtype={"case_id": str})
        cols = [c for c in PER_CASE_COLUMNS if c not in ("dataset", "model")]
        pd.testing.assert_frame_equal(study[cols], ours[cols], check_exact=True)
        study_l = pd.read_csv(run / "metrics" / dataset / m / "seed0" / "per_lesion.csv", dtype={"case_id": str})
        ours_l = pd.read_csv(
            out / "metrics" / "refs" / f"{m}_copy" / "seed0" / "per_lesion.csv", dtype={"case_id": str}
        )
        cols = [c for c in PER_LESION_COLUMNS if c not in ("dataset", "model")]
        pd.testing.assert_frame_equal(study_l[cols], ours_l[cols], check_exact=True)
    lesions = pd.read_csv(run / "data" / dataset / "lesions.csv", dtype={"case_id": str})
    ours = pd.read_csv(out / "data" / "refs" / "lesions.csv", dtype={"case_id": str})
    test = lesions[lesions["split"] == "test"].reset_index(drop=True)
    np.testing.assert_array_equal(test["voxels"], ours["voxels"])
    np.testing.assert_array_equal(test["size_fraction"], ours["size_fraction"])


# --- bad input: refused before anything is written -------------------------------------------------------


def test_missing_cases_are_all_listed_and_nothing_is_written(tmp_path, capsys):
    dataset, preds, _ = nnunet_fixture(tmp_path)
    for cid in ("case_001", "case_003"):
        (preds["nnunet_2d"] / f"{cid}.nii.gz").unlink()
    out = tmp_path / "out"
    assert (
        compare(
            "--reference",
            dataset,
            "--predictions",
            f"a={preds['nnunet_3d']}",
            "--predictions",
            f"b={preds['nnunet_2d']}",
            "--out",
            out,
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "2 of 4 reference cases have no prediction: ['case_001', 'case_003']" in err
    assert str(preds["nnunet_2d"]) in err and "--missing-as-empty" in err
    assert not out.exists()


def test_duplicate_case_ids_are_refused(tmp_path, capsys):
    refs_dir, preds, _ = png_fixture(tmp_path)
    shutil.copy(preds["model_a"] / "img01.png", preds["model_a"] / "img01.tif")
    assert compare("--reference", refs_dir, "--predictions", f"a={preds['model_a']}", "--out", tmp_path / "o") == 1
    assert "two prediction files for case(s) img01 (img01.png, img01.tif)" in capsys.readouterr().err
    shutil.copy(refs_dir / "img02.png", refs_dir / "img02.tif")
    assert compare("--reference", refs_dir, "--predictions", f"b={preds['model_b']}", "--out", tmp_path / "o") == 1
    assert "two files for case 'img02': img02.png, img02.tif" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_extra_prediction_files_are_warned_about_and_ignored(tmp_path):
    from lesionbench.compare.inputs import check_folders, parse_datasets

    dataset, preds, _ = nnunet_fixture(tmp_path)
    shutil.copy(preds["nnunet_3d"] / "case_000.nii.gz", preds["nnunet_3d"] / "case_999.nii.gz")
    ds = parse_datasets([str(dataset)], [f"m={preds['nnunet_3d']}"])["Dataset501_Lesions"]
    _, warnings = check_folders(ds, missing_as_empty=False)
    assert warnings == [f"{preds['nnunet_3d']} (m): 1 file(s) match no reference case and are ignored: case_999.nii.gz"]


def test_bad_names_and_settings_are_refused(tmp_path, capsys):
    refs_dir, preds, _ = png_fixture(tmp_path)
    for args, message in [
        (["--predictions", f"unet={preds['model_a']}"], "not one of"),
        (["--predictions", f"a={preds['model_a']}", "--predictions", f"a={preds['model_b']}"], "given twice"),
        (["--predictions", f"a={tmp_path / 'nowhere'}"], "folder not found"),
        (["--predictions", f"a={preds['model_a']}", "--threshold", "1.5"], "--threshold must lie in (0, 1)"),
    ]:
        assert compare("--reference", refs_dir, *args, "--out", tmp_path / "o") == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --- bad input found by the rules (the data stage and the evaluation read the files) -------------------------


def _stage(tmp_path, ds_cfg):
    """acquire -> split -> prepare -> lesions of an evaluation-only data set, as the rules run them."""
    d = tmp_path / "results"
    acquire_step.run("reference", ds_cfg, d / "raw", d / "manifest.csv")
    split_step.run("reference", {"all_test": True}, d / "manifest.csv", d / "split.csv")
    prepare_step.run(
        "reference", ds_cfg, d / "manifest.csv", d / "split.csv", d / "raw", d / "prepared", d / "cases.csv"
    )
    lesions_step.run("reference", d / "prepared", d / "split.csv", d / "lesions.csv", d / "quartiles.csv")
    return d


def ref_config(path, **extra):
    return {
        "source": "references",
        "path": str(path),
        "split": {"all_test": True},
        "preprocessing": {"normalization": "minmax", "resize": None},
        **extra,
    }


def test_reference_folder_without_a_lesion_is_refused(tmp_path):
    refs = tmp_path / "refs"
    refs.mkdir()
    for cid in ("a", "b"):
        write_nifti(np.zeros((8, 8, 3), np.uint8), AFFINE, refs / f"{cid}.nii.gz")
    with pytest.raises(LesionError, match=r"no reference lesion in any of the 2 test cases .*a\.nii\.gz"):
        _stage(tmp_path, ref_config(refs))


def test_unknown_reference_label_values_are_refused(tmp_path):
    dataset, _, refs = nnunet_fixture(tmp_path)
    labels = refs["case_002"].copy()
    labels[0, 0, 0] = 3
    write_nifti(labels, AFFINE, dataset / "labelsTs" / "case_002.nii.gz")
    with pytest.raises(
        SourceError,
        match=r"case_002.nii.gz \(case 'case_002'\): unknown label values \[3\]; "
        r"the data set's labels are \[0, 1\]",
    ):
        _stage(tmp_path, ref_config(dataset))


def test_unreadable_reference_is_named(tmp_path):
    dataset, _, _ = nnunet_fixture(tmp_path)
    (dataset / "labelsTs" / "case_001.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(SourceError, match=r"case 'case_001'.*case_001.nii.gz: cannot read NIfTI"):
        _stage(tmp_path, ref_config(dataset))


def _evaluate(tmp_path, results, predictions, **settings):
    from lesionbench.evaluation import Settings, evaluate_to_files

    return evaluate_to_files(
        predictions,
        results / "prepared",
        results / "split.csv",
        tmp_path / "pc.csv",
        tmp_path / "pl.csv",
        dataset="reference",
        model="m",
        seed=0,
        settings=Settings(tolerance_mm=1.0, dilation_mm=2.0, **settings),
        lesions_csv=results / "lesions.csv",
    )


def test_prediction_geometry_and_content_errors_name_case_and_files(tmp_path):
    from lesionbench.evaluation import EvaluationError

    dataset, preds, refs = nnunet_fixture(tmp_path)
    results = _stage(tmp_path, ref_config(dataset))
    folder = preds["nnunet_3d"]
    ref_file = dataset / "labelsTs" / "case_001.nii.gz"
    cases = [
        (
            lambda: write_nifti(refs["case_001"][:, :, :5], AFFINE, folder / "case_001.nii.gz"),
            r"case 'case_001': .*case_001.nii.gz: shape \(5, 28, 24\) does not match the reference \(6, 28, 24\)",
        ),
        (
            lambda: write_nifti(refs["case_001"], AFFINE @ np.diag([1.5, 1, 1, 1]), folder / "case_001.nii.gz"),
            r"case_001.nii.gz: affine \[\[-1.2, 0.0, 0.0, 12.0\].*does not match the reference .*case_001.nii.gz "
            r"affine \[\[-0.8, 0.0, 0.0, 12.0\]",
        ),
        (lambda: (folder / "case_001.nii.gz").write_bytes(b"garbage"), r"case_001.nii.gz: cannot read NIfTI"),
        (
            lambda: write_nifti(refs["case_001"] * 7, AFFINE, folder / "case_001.nii.gz"),
            r"case_001.nii.gz: prediction holds values \[0, 7\]; a prediction must hold 0 and the label values \[1\]",
        ),
    ]
    for break_it, message in cases:
        break_it()
        with pytest.raises(EvaluationError, match=message):
            _evaluate(tmp_path, results, folder)
        assert not (tmp_path / "pc.csv").exists()
    assert str(ref_file)  # the reference file is named in the affine message above


def test_missing_as_empty_scores_and_flags_the_case(tmp_path, caplog):
    dataset, preds, _ = nnunet_fixture(tmp_path)
    results = _stage(tmp_path, ref_config(dataset))
    (preds["nnunet_3d"] / "case_002.nii.gz").unlink()
    per_case, _ = _evaluate(tmp_path, results, preds["nnunet_3d"], missing_as_empty=True)
    row = per_case.set_index("case_id").loc["case_002"]
    assert bool(row["missing_prediction"]) and bool(row["pred_empty"]) and row["dice"] == 0.0
    assert row["n_hit_lesions"] == 0 and row["n_fp_lesions"] == 0
    assert not per_case.set_index("case_id").drop("case_002")["missing_prediction"].any()
    assert "no prediction for case 'case_002'" in caplog.text


# --- layouts ---------------------------------------------------------------------------------------------------


def test_layouts_are_discovered(tmp_path):
    dataset, _, refs = nnunet_fixture(tmp_path)
    layout = discover(dataset)
    assert layout.kind == "nnunet" and layout.masks_dir.name == "labelsTs" and sorted(layout.masks) == sorted(refs)
    assert discover(dataset / "labelsTs").kind == "nnunet"
    (dataset / "labelsTs").rename(dataset / "labelsTr")
    assert discover(dataset).masks_dir.name == "labelsTr"
    # Medical Segmentation Decathlon: labels keyed by value, masks in labelsTr, macOS "._" files skipped
    msd = tmp_path / "Task03_Liver"
    (msd / "labelsTr").mkdir(parents=True)
    (msd / "dataset.json").write_text(
        json.dumps(
            {"name": "Liver", "labels": {"0": "background", "1": "liver", "2": "cancer"}, "training": [], "test": []}
        )
    )
    for cid, labels in volume_cases(2).items():
        write_nifti(labels * 2, AFFINE, msd / "labelsTr" / f"liver_{cid[-1]}.nii.gz")
    (msd / "labelsTr" / "._liver_0.nii.gz").write_bytes(b"\x00")
    layout = discover(msd)
    assert (layout.kind, sorted(layout.masks), layout.label_values) == ("msd", ["liver_0", "liver_1"], [1, 2])
    # nnU-Net's ignore label and region-based labels
    data = {
        "labels": {"background": 0, "whole": [1, 2], "core": [2], "ignore": 3},
        "file_ending": ".png",
        "channel_names": {"0": "x"},
        "numTraining": 1,
    }
    (dataset / "dataset.json").write_text(json.dumps(data))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(dataset / "labelsTr" / "p1.png")
    layout = discover(dataset)
    assert (layout.label_values, layout.ignore_labels, sorted(layout.masks)) == ([1, 2, 3], [3], ["p1"])


def test_msd_label_map_reads_lesion_labels_for_references_and_predictions(tmp_path):
    """LiTS-like: 1 = liver, 2 = tumour; --lesion-labels 2 scores tumours only, in references and
    predictions alike (a prediction holding the liver label is read as background there)."""
    msd = tmp_path / "Task03_Liver"
    (msd / "labelsTr").mkdir(parents=True)
    (msd / "dataset.json").write_text(
        json.dumps({"labels": {"0": "background", "1": "liver", "2": "cancer"}, "training": []})
    )
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    cases = volume_cases(2, seed=3)
    for cid, tumour in cases.items():
        liver = np.zeros_like(tumour)
        liver[2:-2, 2:-2, :] = 1
        labels = np.where(tumour > 0, 2, liver).astype(np.uint8)
        write_nifti(labels, AFFINE, msd / "labelsTr" / f"{cid}.nii.gz")
        write_nifti(np.where(np.roll(tumour, 1, 0) > 0, 2, liver).astype(np.uint8), AFFINE, pred_dir / f"{cid}.nii.gz")
    results = _stage(tmp_path, ref_config(msd, labels={"lesion": [2]}))
    per_case, _ = _evaluate(tmp_path, results, pred_dir)
    for cid, tumour in cases.items():
        ref = np.transpose(tumour, (2, 0, 1)) > 0
        pred = np.transpose(np.roll(tumour, 1, 0), (2, 0, 1)) > 0
        row = evaluate_case(ref, pred, (2.5, 0.8, 0.8), tolerance_mm=1.0, dilation_mm=2.0).case_row()
        got = per_case.set_index("case_id").loc[cid]
        assert got["dice"] == pytest.approx(row["dice"]) and got["hd95"] == pytest.approx(row["hd95"])


def test_compare_config_passes_the_schema_and_lint(tmp_path):
    """The config the command writes is valid on its own, and the workflow in compare mode lints clean."""
    from argparse import Namespace

    import yaml

    from lesionbench.compare.command import build_config
    from lesionbench.compare.inputs import parse_datasets

    refs_dir, preds, _ = png_fixture(tmp_path)
    args = Namespace(
        out=tmp_path / "out",
        reference=refs_dir,
        images=None,
        spacing=[0.5, 0.5],
        lesion_labels=None,
        ignore_labels=[2],
        tolerance_mm=1.0,
        dilation_mm=2.0,
        threshold=0.4,
        min_component_voxels=0,
        penalty_mm=None,
        missing_as_empty=True,
        surface="voxel",
    )
    config = build_config(args, parse_datasets([f"reference={refs_dir}"], [f"a={preds['model_a']}"]))
    assert config["evaluation"] == {
        "distance_penalty_mm": None,
        "probability_maps": True,
        "missing_predictions": "empty",
    }
    assert config["datasets"]["reference"]["labels"] == {"ignore": [2]}
    # --surface surfel writes evaluation.surface_definition, which the schema accepts (voxel is its default)
    from snakemake.utils import validate

    surfel = build_config(
        Namespace(**{**vars(args), "surface": "surfel"}),
        parse_datasets([str(refs_dir)], ["a=" + str(preds["model_a"])]),
    )
    assert surfel["evaluation"]["surface_definition"] == "surfel" and list(surfel["datasets"]) == ["png_refs"]
    validate(surfel, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert "surface_definition" not in config["evaluation"]
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert config["evaluation"]["surface_definition"] == "voxel"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--configfile", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    # an evaluation-only data set has no training cases: a trained model on it is refused at config time
    config["models"] = {"unet": {"encoder": "vgg11_bn"}}
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )
    assert proc.returncode != 0
    assert (
        "are evaluation-only (split.all_test: every case is a test case) but models ['unet']"
        in proc.stdout + proc.stderr
    )


def test_lesionbench_command_dispatches_its_subcommands(capsys):
    assert lesionbench([]) == 2 and "compare" in capsys.readouterr().out
    assert lesionbench(["frobnicate"]) == 2 and "unknown command 'frobnicate'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        lesionbench(["evaluate", "--help"])
    assert stop.value.code == 0 and "--prepared" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        lesionbench(["compare", "--help"])
    assert stop.value.code == 0 and "--missing-as-empty" in capsys.readouterr().out


def test_snakemake_command_uses_the_named_profile_and_cores(tmp_path):
    from lesionbench.compare.command import CompareError, snakemake_command

    cmd = snakemake_command(ROOT, tmp_path / "config.yaml", tmp_path, None, "laptop")
    assert cmd[cmd.index("--workflow-profile") + 1] == str(ROOT / "workflow" / "profiles" / "laptop")
    assert "--cores" not in cmd  # the profile decides
    cmd = snakemake_command(ROOT, tmp_path / "config.yaml", tmp_path, 3, None)
    assert cmd[cmd.index("--cores") + 1] == "3" and cmd[cmd.index("--directory") + 1] == str(tmp_path)
    with pytest.raises(CompareError, match="no such profile"):
        snakemake_command(ROOT, tmp_path / "config.yaml", tmp_path, None, "nowhere")


# --- data sets, names, input errors, the last line -----------------------------------------------------------


def test_data_sets_are_named_and_predictions_assigned(tmp_path):
    from lesionbench.compare.inputs import CompareError, folder_name, parse_datasets

    dataset, preds, _ = nnunet_fixture(tmp_path)
    assert folder_name(dataset) == "Dataset501_Lesions"
    assert folder_name(dataset / "labelsTs") == "Dataset501_Lesions"  # a generic folder: its parent names it
    assert folder_name(tmp_path / "my refs (v2)") == "my_refs_v2"
    one = parse_datasets([str(dataset / "labelsTs")], [f"m={preds['nnunet_3d']}"], name="liver")
    assert list(one) == ["liver"] and one["liver"].predictions == {"m": preds["nnunet_3d"]}
    # several data sets: DATASET/MODEL=DIR, or MODEL=DIR with {dataset} in DIR
    for name in ("a", "b"):
        (tmp_path / "by_set" / name).mkdir(parents=True)
    several = parse_datasets(
        [f"a={dataset}", f"b={dataset}"],
        [f"a/x={preds['nnunet_3d']}", f"b/x={preds['nnunet_2d']}", f"y={tmp_path / 'by_set' / '{dataset}'}"],
        images=[f"b={dataset / 'imagesTs'}"],
    )
    assert several["a"].predictions == {"x": preds["nnunet_3d"], "y": tmp_path / "by_set" / "a"}
    assert several["b"].predictions == {"x": preds["nnunet_2d"], "y": tmp_path / "by_set" / "b"}
    assert several["a"].images is None and several["b"].images == dataset / "imagesTs"
    for refs, predictions, message in [
        ([str(dataset), str(dataset)], [f"m={preds['nnunet_3d']}"], "with several data sets name each"),
        ([f"a={dataset}", f"b={dataset}"], [f"m={preds['nnunet_3d']}"], "say which: --predictions DATASET/m=DIR"),
        ([f"a={dataset}", f"b={dataset}"], [f"a/m={preds['nnunet_3d']}"], "'b' has no predictions of model(s) ['m']"),
        ([f"a={dataset}"], [f"c/m={preds['nnunet_3d']}"], "no data set 'c'"),
        ([f"pooled={dataset}"], [f"m={preds['nnunet_3d']}"], "data set name must be"),
        ([str(dataset)], [f"pair_first={preds['nnunet_3d']}"], "model name must be"),
        ([f"a={dataset}", f"a={dataset}"], [f"m={preds['nnunet_3d']}"], "'a' is given twice"),
    ]:
        with pytest.raises(CompareError, match=re.escape(message)):
            parse_datasets(refs, predictions)


def _last_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_input_errors_end_on_one_line_naming_case_file_and_problem(tmp_path, capsys):
    """Checked from headers (and the values of floating-point predictions) before anything runs."""
    dataset, preds, refs = nnunet_fixture(tmp_path)
    folder = preds["nnunet_3d"]
    target = folder / "case_001.nii.gz"
    labels = refs["case_001"]
    nan = labels.astype(np.float32)
    nan[0, 0, 0] = np.nan
    cases = [
        (np.stack([labels, labels], -1), "4D prediction of shape (28, 24, 6, 2); a prediction must be a 2D or 3D"),
        (labels[:, :, :5], "shape (28, 24, 5) does not match the reference"),
        (nan, "1 NaN or infinite value(s)"),
        (labels.astype(np.float32) * 0.7, "fractional values (e.g. 0.7), a probability map; --threshold X"),
    ]
    for data, problem in cases:
        write_nifti(data, AFFINE, target)
        out = tmp_path / "out"
        assert compare("--reference", dataset, "--predictions", f"m={folder}", "--out", out) == 1
        line = _last_error_line(capsys)
        assert line.startswith("lesionbench compare: error: case 'case_001' (m): ") and str(target) in line, line
        assert problem in line, line
        assert not out.exists()


@pytest.mark.slow
def test_an_error_inside_the_workflow_ends_on_the_failed_step(tmp_path, capsys):
    dataset, preds, refs = nnunet_fixture(tmp_path, n=3)
    bad = preds["nnunet_2d"] / "case_002.nii.gz"
    write_nifti(refs["case_002"] * 7, AFFINE, bad, spacing=(0.8, 0.8, 2.5))  # label values are read by the rule
    out = tmp_path / "out"
    assert compare("--reference", dataset, "--predictions", f"m={preds['nnunet_2d']}", "--out", out) == 1
    line = _last_error_line(capsys)
    assert line.startswith("lesionbench compare: error: step evaluate: case 'case_002': "), line
    assert f"{bad}: prediction holds values [0, 7]" in line
    assert str(out / "logs" / "evaluate" / "Dataset501_Lesions" / "m" / "seed0.log") in line
    assert str(out / "logs" / "snakemake.log") in line


def test_failure_line_reads_the_logged_error(tmp_path):
    from lesionbench.compare.failure import failure_line

    log = tmp_path / "rule.log"
    log.write_text(
        "2026-01-01 10:00:00,000 INFO lesionbench: reading\n"
        "2026-01-01 10:00:01,000 ERROR lesionbench.runtime: SourceError: case 'c1': c1.nii.gz: bad\n"
        "  second line of the message\n"
        "Traceback (most recent call last):\n"
    )
    output = (
        "Select jobs to execute...\n"
        "Error in rule prepare:\n"
        "    message: None\n"
        "    jobid: 3\n"
        f"    log: {log} (check log file(s) for error details)\n"
        "Exiting because a job execution failed. Look below for error messages\n"
    )
    assert failure_line(output) == f"step prepare: case 'c1': c1.nii.gz: bad second line of the message (log: {log})"
    assert failure_line("Building DAG of jobs...\nWorkflowError:\nconfig: 'x' is not valid\n") == (
        "config: 'x' is not valid"
    )


@pytest.mark.slow
def test_three_data_sets_give_per_data_set_and_pooled_tables_and_verdict(tmp_path, capsys):
    roots = {}
    for k, name in enumerate(("alpha", "beta", "gamma")):
        dataset, preds, _ = nnunet_fixture(tmp_path / name, n=3 + k % 2)
        roots[name] = (dataset, preds)
    # model "three_d" by DATASET/MODEL=DIR, model "two_d" by one folder pattern with {dataset}
    for name, (_, preds) in roots.items():
        shutil.copytree(preds["nnunet_2d"], tmp_path / "two_d" / name)
    args = []
    for name, (dataset, preds) in roots.items():
        args += ["--reference", f"{name}={dataset}", "--predictions", f"{name}/three_d={preds['nnunet_3d']}"]
    args += ["--predictions", f"two_d={tmp_path / 'two_d' / '{dataset}'}"]
    out = tmp_path / "out"
    assert compare(*args, "--out", out) == 0
    printed = capsys.readouterr().out
    assert "Verdict (pooled; per data set in the report: alpha, beta, gamma):" in printed
    assert len(printed.splitlines()) <= 30
    claim = pd.read_csv(out / "claim_check.csv")
    assert set(claim["dataset"]) == {"alpha", "beta", "gamma", "pooled"}
    pooled = claim[claim["dataset"] == "pooled"]
    assert len(pooled) == 5 and set(pooled["verdict"]) <= {"supported", "not_supported", "inconclusive"}
    assert set(pd.read_csv(out / "answer" / "verdict.csv")["dataset"]) == {"alpha", "beta", "gamma", "pooled"}
    assert "pooled" in set(pd.read_csv(out / "bootstrap_directional_robustness.csv")["dataset"])
    for name, (dataset, preds) in roots.items():
        summary = json.loads((out / "summary" / f"{name}.json").read_text())
        assert summary["dataset"] == name and sorted(summary["models"]) == ["three_d", "two_d"]
        assert summary["settings"]["predictions"]["three_d"] == str(preds["nnunet_3d"])
        assert summary["settings"]["predictions"]["two_d"] == str(tmp_path / "two_d" / name)
        assert summary["models"]["three_d"]["n_cases"] == len(list((dataset / "labelsTs").iterdir()))


@pytest.mark.slow
def test_installed_wheel_runs_compare_from_any_directory(tmp_path):
    """pip wheel of the checkout, installed (no editable link) into a fresh venv whose dependencies come from
    this environment's site-packages; `lesionbench compare` from an unrelated directory runs the workflow
    copy inside the package, and a rerun has nothing to do."""
    import sysconfig
    import venv

    source = copy_workflow(tmp_path / "source")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source), "-w", wheels],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("lesionbench-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    # the dependencies (torch, snakemake ...) of this environment, after the venv's own packages
    (Path(purelib) / "lesionbench_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", purelib, str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    dataset, preds, _ = nnunet_fixture(tmp_path / "data", n=3)
    work = tmp_path / "elsewhere"
    work.mkdir()
    command = [
        str(python),
        "-m",
        "lesionbench.cli",
        "compare",
        "--reference",
        str(dataset),
        "--predictions",
        f"a={preds['nnunet_3d']}",
        "--predictions",
        f"b={preds['nnunet_2d']}",
        "--out",
        "out",
        "--cores",
        "2",
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    installed = Path(purelib) / "lesionbench" / "workflow_files" / "Snakefile"
    log = (work / "out" / "logs" / "snakemake.log").read_text()
    assert f"Snakefile: {installed}" in log
    assert proc.stdout.splitlines()[-2] == f"Report: {work / 'out' / 'report.html'}"
    assert (work / "out" / "summary" / "Dataset501_Lesions.json").is_file()
    again = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "Nothing to be done" in (work / "out" / "logs" / "snakemake.log").read_text()


def test_runner_logs_the_command_and_ends_on_the_answer_or_the_error(tmp_path, capsys):
    """`make run`'s wrapper: the command's output goes to RESULTS/logs/snakemake.log; then the answer, or the
    failure as the last line with the command's exit code."""
    from lesionbench.compare.runner import main as runner

    (tmp_path / "answer").mkdir()
    (tmp_path / "answer" / "summary.txt").write_text("the answer\nReport: r.html\n")
    assert runner([str(tmp_path), "--", sys.executable, "-c", "print('chatter ' * 3)"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == ["the answer", "Report: r.html"] and not any("chatter" in p for p in printed)
    assert "chatter" in (tmp_path / "logs" / "snakemake.log").read_text()
    failing = "print('Error in rule x:'); print('    log: /nowhere.log (check log file(s) for error details)'); exit(3)"
    assert runner([str(tmp_path), "--", sys.executable, "-c", failing]) == 3
    assert _last_error_line(capsys) == (
        f"error: step x failed; its log: /nowhere.log [Snakemake's output: {tmp_path / 'logs' / 'snakemake.log'}]"
    )


def test_answer_tables_and_text_from_the_study_tables():
    from lesionbench.compare.answer import model_table, summary_text, verdict_display, verdict_table

    overall = pd.DataFrame(
        [
            {"dataset": "d", "model": m, "metric": k, "value": v, "ci_low": lo, "ci_high": hi}
            for m, k, v, lo, hi in [
                ("good", "dice", 0.81234, 0.8, 0.83),
                ("good", "hd95", 2.5, 2.0, 3.25),
                ("bad", "dice", 0.8, 0.79, 0.81),
                ("bad", "hd95", 7.0, 6.0, 8.0),
            ]
        ]
    )
    small = pd.DataFrame(
        [
            {"dataset": "d", "model": m, "lesion_set": s, "metric": k, "value": v}
            | {"n_lesions": n, "insufficient_lesions": n < 10}
            for m, s, k, v, n in [
                ("good", "all", "lesion_recall", 0.9, 40),
                ("good", "common", "hd95", 1.5, 12),
                ("bad", "all", "lesion_recall", 0.75, 40),
                ("bad", "common", "hd95", 4.0, 12),
            ]
        ]
    )
    models = model_table(overall, small)
    assert models.iloc[0].tolist() == [
        "d",
        "good",
        "0.812 [0.8, 0.83]",
        "2.5 [2, 3.25]",
        "0.9 (40 lesions)",
        "1.5 (12 lesions)",
    ]
    claim = pd.DataFrame(
        [
            {"dataset": d, "finding": f, "verdict": v, "reason": f"{d} {f}"}
            for d in ("d", "e", "pooled")
            for f, v in (("dice_tie", "supported"), ("ranking_change", "inconclusive"))
        ]
    )
    verdict = verdict_table(claim)
    wide = verdict_display(verdict)
    assert list(wide.columns) == ["finding", "d", "e", "pooled", "reason (pooled)"]
    assert wide.iloc[1].tolist() == [
        "ranking_change",
        "inconclusive",
        "inconclusive",
        "inconclusive",
        "pooled ranking_change",
    ]
    assert list(verdict_display(verdict[verdict.dataset == "d"]).columns) == ["finding", "verdict", "reason"]
    text = summary_text(models, verdict, "out/report.html", {"d": 30}, "good - bad: Dice +0.012").splitlines()
    assert text[0] == "d, 30 cases:" and text[2].split()[:2] == ["good", "0.812"]
    assert text[4] == "Best two by Dice (pooled): good - bad: Dice +0.012"
    assert text[5] == "Verdict (pooled; per data set in the report: d, e):"
    assert text[6].split() == ["dice_tie", "supported", "pooled", "dice_tie"] and text[-1] == "Report: out/report.html"
