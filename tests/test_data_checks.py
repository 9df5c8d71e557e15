"""Checkpoint validations of the data stage: each broken invariant fails with a message naming it."""

import json

import numpy as np
import pandas as pd
import pytest

from lesionbench.data.checks import ValidationError
from lesionbench.data.steps import acquire as acquire_step
from lesionbench.data.steps import lesions as lesions_step
from lesionbench.data.steps import prepare as prepare_step
from lesionbench.data.steps import split as split_step
from lesionbench.data.steps import summary as summary_step
from lesionbench.data.steps import validate as validate_step

DS = {
    "source": "synthetic",
    "synthetic": {"kind": "fundus", "n_cases": 12, "size": [64, 64], "seed": 4},
    "split": {"test_fraction": 0.4, "val_fraction": 0.3, "salt": "x"},
    "preprocessing": {"normalization": "zscore"},
}


@pytest.fixture()
def built(tmp_path):
    d = tmp_path / "ds"
    acquire_step.run("fundus", DS, d / "raw", d / "raw_manifest.csv")
    split_step.run("fundus", DS["split"], d / "raw_manifest.csv", d / "split.csv")
    prepare_step.run("fundus", DS, d / "raw_manifest.csv", d / "split.csv", d / "raw", d / "prepared", d / "cases.csv")
    lesions_step.run("fundus", d / "prepared", d / "split.csv", d / "lesions.csv", d / "quartiles.csv")
    return d


def run_validate(d, threads=1):
    return validate_step.run(
        "fundus",
        d / "prepared",
        d / "split.csv",
        d / "cases.csv",
        d / "lesions.csv",
        d / "quartiles.csv",
        d / "validation.json",
        threads=threads,
    )


def test_valid_dataset_passes_and_reports_counts(built):
    report = run_validate(built)
    split = pd.read_csv(built / "split.csv")
    lesions = pd.read_csv(built / "lesions.csv")
    assert report["cases"] == split["split"].value_counts().reindex(["train", "val", "test"]).to_dict()
    assert sum(report["lesions"].values()) == len(lesions) > 0
    assert json.loads((built / "validation.json").read_text()) == report


def test_mask_of_wrong_shape_names_the_case(built):
    case_id = pd.read_csv(built / "split.csv")["case_id"].iloc[0]
    np.save(built / "prepared" / case_id / "mask.npy", np.zeros((3, 3), np.uint8))
    with pytest.raises(ValidationError, match=f"case '{case_id}'.*shape"):
        run_validate(built)
    assert not (built / "validation.json").exists()


def test_non_binary_mask_names_the_case(built):
    case_id = pd.read_csv(built / "split.csv")["case_id"].iloc[1]
    mask = np.load(built / "prepared" / case_id / "mask.npy")
    np.save(built / "prepared" / case_id / "mask.npy", (mask * 0 + 3).astype(np.uint8))
    with pytest.raises(ValidationError, match=f"case '{case_id}'.*values 0/1"):
        run_validate(built)


def test_missing_prepared_case_names_it(built):
    import shutil

    case_id = pd.read_csv(built / "split.csv")["case_id"].iloc[2]
    shutil.rmtree(built / "prepared" / case_id)
    with pytest.raises(ValidationError, match=f"case '{case_id}'.*missing"):
        run_validate(built)


def test_lesion_count_mismatch_names_the_case(built):
    lesions = pd.read_csv(built / "lesions.csv", dtype={"case_id": str})
    case_id = lesions["case_id"].iloc[0]
    lesions.drop(index=0).to_csv(built / "lesions.csv", index=False)
    with pytest.raises(ValidationError, match=f"case '{case_id}': mask has \\d+ lesions but lesions.csv lists"):
        run_validate(built)


def test_cases_table_must_match_split(built):
    cases = pd.read_csv(built / "cases.csv")
    cases.loc[0, "split"] = "test" if cases.loc[0, "split"] != "test" else "train"
    cases.to_csv(built / "cases.csv", index=False)
    with pytest.raises(ValidationError, match=r"cases\.csv does not list the same cases and splits"):
        run_validate(built)


def test_no_test_lesions_and_bad_quartiles_are_errors(built):
    lesions = pd.read_csv(built / "lesions.csv")
    q = pd.read_csv(built / "quartiles.csv")
    q.loc[0, "q25"] = np.nan
    q.to_csv(built / "quartiles.csv", index=False)
    with pytest.raises(ValidationError, match="quartile edges are not finite and ordered"):
        run_validate(built)
    lesions["split"] = "train"
    lesions.to_csv(built / "lesions.csv", index=False)
    with pytest.raises(ValidationError, match="test split has no reference lesions"):
        run_validate(built)


def test_summary_carries_counts(built, tmp_path):
    run_validate(built)
    out = tmp_path / "summary.csv"
    table = summary_step.run(
        ["fundus"],
        {"fundus": {"modality": "fundus"}},
        [built / "split.csv"],
        [built / "lesions.csv"],
        [built / "quartiles.csv"],
        out,
    )
    row = table.iloc[0]
    split = pd.read_csv(built / "split.csv")
    assert row["cases_test"] == (split["split"] == "test").sum()
    assert row["lesions_test"] == pd.read_csv(built / "quartiles.csv")["n_lesions"].iloc[0]
    assert row["q1_upper"] < row["q3_upper"] and row["size_bins"] == "test_quartiles"
    assert pd.read_csv(out).shape == (1, len(table.columns))


def test_train_quartile_edges_follow_from_the_training_lesions(built, tmp_path):
    d = built
    lesions_step.run(
        "fundus", d / "prepared", d / "split.csv", d / "lesions.csv", d / "quartiles.csv", edge_rule="train_quartiles"
    )
    q = pd.read_csv(d / "quartiles.csv")
    lesions = pd.read_csv(d / "lesions.csv")
    train = lesions.loc[lesions.split == "train", "size_fraction"]
    assert q.loc[0, "edge_rule"] == "train_quartiles" and q.loc[0, "edge_lesions"] == len(train)
    assert q.loc[0, ["q25", "q50", "q75"]].tolist() == pytest.approx(np.percentile(train, [25, 50, 75]).tolist())
    run_validate(d)
    # edges that claim the training rule but were computed on the test lesions are caught
    test = lesions.loc[lesions.split == "test", "size_fraction"]
    q.loc[0, ["q25", "q50", "q75"]] = np.percentile(test, [25, 50, 75])
    q.to_csv(d / "quartiles.csv", index=False)
    with pytest.raises(ValidationError, match=r"do not follow from lesions\.csv by rule 'train_quartiles'"):
        run_validate(d)


def test_threads_give_the_serial_tables_and_errors(built):
    """lesions and validate_data label a case per thread: same lesion table, same report, and every bad case
    still named, in split order."""
    serial = pd.read_csv(built / "lesions.csv")
    lesions_step.run("fundus", built / "prepared", built / "split.csv", built / "l2.csv", built / "q2.csv", threads=2)
    pd.testing.assert_frame_equal(pd.read_csv(built / "l2.csv"), serial)
    assert (built / "q2.csv").read_text() == (built / "quartiles.csv").read_text()
    assert run_validate(built, threads=2) == run_validate(built)
    ids = pd.read_csv(built / "split.csv")["case_id"].tolist()
    for case_id in (ids[1], ids[3]):
        np.save(built / "prepared" / case_id / "mask.npy", np.zeros((3, 3), np.uint8))
    with pytest.raises(ValidationError) as err:
        run_validate(built, threads=2)
    message = str(err.value)
    assert f"case '{ids[1]}'" in message and f"case '{ids[3]}'" in message
    assert message.index(f"case '{ids[1]}'") < message.index(f"case '{ids[3]}'")
