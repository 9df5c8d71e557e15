"""Folder evaluation, the lesionbench-evaluate command and the evaluate rule on small cases made here."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lesionbench.data.lesions import lesion_table
from lesionbench.evaluation import (PER_CASE_COLUMNS, PER_LESION_COLUMNS, EvaluationError, Settings,
                                    evaluate_to_files)
from lesionbench.evaluation.cli import main
from lesionbench.evaluation.folder import model_and_seed
from lesionbench.io.cases import Case, load_case, read_meta, save_case
from lesionbench.io.predictions import write_prediction

ROOT = Path(__file__).resolve().parents[1]


def make_dataset(root: Path, ndim: int) -> Path:
    """Prepared cases (two test cases, one of them with an ignore mask and one empty), split and lesions."""
    prepared = root / "prepared"
    shape = (40, 48) if ndim == 2 else (6, 24, 20)
    spacing = (0.5, 0.5) if ndim == 2 else (3.0, 1.0, 1.0)
    rows = []
    for cid, split in (("c1", "test"), ("c2", "test"), ("c3", "train"), ("c0", "test")):
        mask = np.zeros(shape, np.uint8)
        ignore = None
        if cid != "c0":
            mask[(slice(1, 4),) * ndim] = 1
            mask[tuple(slice(s - 6, s - 2) for s in shape)] = 1
        if cid == "c2":
            ignore = np.zeros(shape, np.uint8)
            ignore[(slice(0, 2),) * ndim] = 1
        save_case(Case(case_id=cid, image=np.zeros((1,) + shape, np.float32), mask=mask, spacing=spacing,
                       ignore=ignore, dataset="toy"), prepared)
        rows.append({"case_id": cid, "split": split})
    split = pd.DataFrame(rows).sort_values("case_id")
    split.to_csv(root / "split.csv", index=False)
    table = lesion_table("toy", lambda c: load_case(prepared, c, image=False).mask, split)
    table.to_csv(root / "lesions.csv", index=False)
    return prepared


def write_predictions(prepared: Path, folder: Path, ids, shift=1):
    for cid in ids:
        meta = read_meta(prepared, cid)
        mask = load_case(prepared, cid, image=False).mask
        pred = np.roll(mask, shift, axis=-1)
        if cid in ("c0", "c1"):
            pred[tuple(slice(s // 2, s // 2 + 2) for s in mask.shape)] = 1   # a false positive in the middle
        write_prediction(pred, meta, folder)


SETTINGS = Settings(tolerance_mm=1.0, dilation_mm=1.0, penalty_mm=None, threshold=0.5, min_component_voxels=1)


@pytest.mark.parametrize("ndim", [2, 3])
def test_folder_evaluation_writes_the_contract_tables(tmp_path, ndim):
    prepared = make_dataset(tmp_path, ndim)
    preds = tmp_path / "pred" / "toymodel" / "seed3"
    write_predictions(prepared, preds, ["c0", "c1", "c2"])
    per_case, per_lesion = evaluate_to_files(
        preds, prepared, tmp_path / "split.csv", tmp_path / "out" / "per_case.csv",
        tmp_path / "out" / "per_lesion.csv", dataset="toy", model="toymodel", seed=3, settings=SETTINGS,
        lesions_csv=tmp_path / "lesions.csv")
    on_disk = pd.read_csv(tmp_path / "out" / "per_case.csv", dtype={"case_id": str})
    assert list(on_disk.columns) == PER_CASE_COLUMNS
    assert list(pd.read_csv(tmp_path / "out" / "per_lesion.csv").columns) == PER_LESION_COLUMNS
    assert on_disk["case_id"].tolist() == ["c0", "c1", "c2"]              # every test case, sorted
    assert not on_disk.isna().any().any() and not per_lesion.isna().any().any()
    c0, c1, c2 = per_case.to_dict("records")
    assert c0["ref_empty"] and not c0["pred_empty"] and c0["dice"] == 0.0 and c0["n_ref_lesions"] == 0
    assert (c1["n_ref_lesions"], c1["n_hit_lesions"], c1["n_fp_lesions"]) == (2, 2, 1)
    assert c2["n_fp_lesions"] == 0 and c2["ref_voxels"] < c1["ref_voxels"]   # the ignore mask cut lesion 1
    assert per_lesion["kind"].tolist()[:3] == ["false_positive", "reference", "reference"]  # c0, then c1
    lesions = pd.read_csv(tmp_path / "lesions.csv", dtype={"case_id": str})
    refs = per_lesion[per_lesion["kind"] == "reference"].merge(lesions, on=["case_id", "lesion_id"])
    assert (refs["voxels_x"] == refs["voxels_y"]).all()
    assert np.allclose(refs["size_fraction_x"], refs["size_fraction_y"])
    assert (per_lesion["model"] == "toymodel").all() and (per_lesion["seed"] == 3).all()
    assert not list((tmp_path / "out").glob(".*"))


def test_missing_prediction_is_named(tmp_path):
    prepared = make_dataset(tmp_path, 2)
    preds = tmp_path / "pred"
    write_predictions(prepared, preds, ["c0", "c2"])
    with pytest.raises(EvaluationError, match=r"1 of 3 test predictions are missing \(cases \['c1'\]\)"):
        evaluate_to_files(preds, prepared, tmp_path / "split.csv", tmp_path / "a.csv", tmp_path / "b.csv",
                          dataset="toy", model="m", seed=0, settings=SETTINGS)
    assert not (tmp_path / "a.csv").exists()


def test_lesion_table_mismatch_is_named(tmp_path):
    prepared = make_dataset(tmp_path, 2)
    preds = tmp_path / "pred"
    write_predictions(prepared, preds, ["c0", "c1", "c2"])
    lesions = pd.read_csv(tmp_path / "lesions.csv", dtype={"case_id": str})
    lesions.loc[lesions["case_id"] == "c2", "voxels"] += 1
    lesions.to_csv(tmp_path / "lesions.csv", index=False)
    with pytest.raises(EvaluationError, match="case 'c2'.*lesions.csv"):
        evaluate_to_files(preds, prepared, tmp_path / "split.csv", tmp_path / "a.csv", tmp_path / "b.csv",
                          dataset="toy", model="m", seed=0, settings=SETTINGS, lesions_csv=tmp_path / "lesions.csv")


def test_settings_are_checked_and_read_from_config():
    s = Settings.from_config({"contour_tolerance_mm": 2, "lesion_dilation_mm": 0},
                             {"threshold": 0.4, "min_component_voxels": 3}, None)
    assert (s.tolerance_mm, s.dilation_mm, s.penalty_mm, s.threshold, s.min_component_voxels) == (2, 0, None, 0.4, 3)
    with pytest.raises(EvaluationError, match="contour tolerance"):
        Settings(tolerance_mm=-1, dilation_mm=1)
    with pytest.raises(EvaluationError, match=r"contour_tolerance_mm: .* > 0 mm, got 0\.0"):   # as the schema
        Settings.from_config({"contour_tolerance_mm": 0, "lesion_dilation_mm": 1}, {}, None)
    with pytest.raises(EvaluationError, match=r"lesion_dilation_mm: .* >= 0 mm, got -0\.5"):
        Settings(tolerance_mm=1, dilation_mm=-0.5)
    with pytest.raises(EvaluationError, match="lesion_dilation_mm"):
        Settings.from_config({"contour_tolerance_mm": 2}, {}, None)
    with pytest.raises(EvaluationError, match="threshold"):
        Settings(tolerance_mm=1, dilation_mm=1, threshold=1.0)
    assert model_and_seed("/x/predictions/ds/nnunet/seed12") == ("nnunet", 12)
    assert model_and_seed("/x/external_tool") == ("external_tool", 0)


def test_command_line(tmp_path, capsys):
    prepared = make_dataset(tmp_path, 3)
    preds = tmp_path / "predictions" / "toy" / "other_tool" / "seed0"
    write_predictions(prepared, preds, ["c0", "c1", "c2"], shift=0)
    config = tmp_path / "config.yaml"
    config.write_text("datasets:\n  toy: {evaluation: {contour_tolerance_mm: 1.0, lesion_dilation_mm: 2.0}}\n"
                      "postprocessing: {threshold: 0.5, min_component_voxels: 1}\n"
                      "evaluation: {distance_penalty_mm: 99.0}\n")
    out = tmp_path / "metrics"
    code = main(["--predictions", str(preds), "--prepared", str(prepared), "--split", str(tmp_path / "split.csv"),
                 "--lesions", str(tmp_path / "lesions.csv"), "--config", str(config), "--out", str(out)])
    assert code == 0
    per_case = pd.read_csv(out / "per_case.csv", dtype={"case_id": str})
    assert (per_case["dataset"] == "toy").all() and (per_case["model"] == "other_tool").all()
    assert per_case.loc[per_case["case_id"] == "c0", "hd95"].item() == 99.0        # empty reference: penalty
    assert per_case.loc[per_case["case_id"] == "c2", "dice"].item() == 1.0
    code = main(["--predictions", str(tmp_path / "nowhere"), "--prepared", str(prepared), "--split",
                 str(tmp_path / "split.csv"), "--out", str(out), "--tolerance-mm", "1", "--dilation-mm", "1"])
    assert code == 1 and "predictions folder is missing" in capsys.readouterr().err
    code = main(["--predictions", str(preds), "--prepared", str(prepared), "--split", str(tmp_path / "split.csv"),
                 "--out", str(out)])
    assert code == 1 and "--tolerance-mm" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_rule_through_snakemake(tmp_path):
    results = tmp_path / "results"
    data = results / "data" / "synthetic_fundus"
    data.mkdir(parents=True)
    prepared = make_dataset(data, 2)
    preds = results / "predictions" / "synthetic_fundus" / "unet" / "seed0"
    write_predictions(prepared, preds, ["c0", "c1", "c2"])
    target = results / "metrics" / "synthetic_fundus" / "unet" / "seed0" / "per_lesion.csv"
    proc = subprocess.run([sys.executable, "-m", "snakemake", str(target), "--cores", "1", "--config",
                           f"results={results}", "--allowed-rules", "evaluate"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_lesion = pd.read_csv(target)
    assert list(per_lesion.columns) == PER_LESION_COLUMNS and set(per_lesion["case_id"]) == {"c0", "c1", "c2"}
    assert (results / "logs" / "evaluate" / "synthetic_fundus" / "unet" / "seed0.log").is_file()
    assert (results / "benchmarks" / "evaluate" / "synthetic_fundus" / "unet" / "seed0.tsv").is_file()
