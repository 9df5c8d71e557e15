import pandas as pd
import pytest

from lesionbench.data.split import SplitError, make_split

CFG = {"test_fraction": 0.3, "val_fraction": 0.2, "salt": "s"}


def manifest(ids, official=None):
    return pd.DataFrame({"case_id": ids, "official_split": official or [""] * len(ids)})


def test_split_is_deterministic_and_sorted():
    ids = [f"c{i:03d}" for i in range(60)]
    a = make_split(manifest(ids[::-1]), CFG)
    b = make_split(manifest(ids), CFG)
    pd.testing.assert_frame_equal(a, b)
    assert a["case_id"].tolist() == sorted(ids)
    assert set(a["split"]) == {"train", "val", "test"}


def test_adding_cases_never_moves_an_existing_case():
    ids = [f"c{i:03d}" for i in range(60)]
    before = make_split(manifest(ids), CFG).set_index("case_id")["split"]
    after = make_split(manifest(ids + [f"new{i}" for i in range(100)]), CFG).set_index("case_id")["split"]
    assert (after.loc[before.index] == before).all()


def test_fractions_are_respected_on_many_cases():
    ids = [f"case-{i}" for i in range(4000)]
    counts = make_split(manifest(ids), CFG)["split"].value_counts(normalize=True)
    assert abs(counts["test"] - 0.3) < 0.03
    assert abs(counts["val"] - 0.7 * 0.2) < 0.03


def test_official_split_is_kept_and_val_comes_from_train():
    ids = [f"c{i}" for i in range(40)]
    official = ["train"] * 20 + ["test"] * 20
    table = make_split(manifest(ids, official), {**CFG, "val_fraction": 0.3})
    got = dict(zip(table["case_id"], table["split"]))
    assert all(got[c] == "test" for c in ids[20:])
    assert all(got[c] in ("train", "val") for c in ids[:20])
    assert "val" in got.values()


def test_max_cases_selects_a_stable_subset():
    ids = [f"c{i:03d}" for i in range(200)]
    cfg = {**CFG, "max_cases": {"train": 5, "val": 2, "test": 3}}
    table = make_split(manifest(ids), cfg)
    assert table["split"].value_counts().to_dict() == {"train": 5, "test": 3, "val": 2}
    again = make_split(manifest(ids[::-1]), cfg)
    pd.testing.assert_frame_equal(table, again)


def test_empty_split_is_a_clear_error():
    with pytest.raises(SplitError, match=r"split \['test'\] would be empty"):
        make_split(manifest(["a", "b"]), {"test_fraction": 0.0, "val_fraction": 0.5, "salt": "x"})


def test_duplicate_ids_and_bad_official_values_are_errors():
    with pytest.raises(SplitError, match="duplicate case ids"):
        make_split(manifest(["a", "a", "b"]), CFG)
    with pytest.raises(SplitError, match="official split"):
        make_split(manifest(["a", "b"], ["train", "holdout"]), CFG)
