"""Reading the metric tables from disk: identifiers stay strings, and broken or inconsistent inputs fail with
a message naming the file; the analysis entry points write NaN-free, byte-stable tables."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import study_tables
from lesionbench.stats import pipeline, strata
from lesionbench.stats.tables import StudyTableError, load_study


def written(tmp_path, **kw):
    data = study_tables.make_dataset(
        kw.pop("name", "toy"), **{"n_cases": 8, "seed": 1, "models": ("a", "b", "c"), **kw}
    )
    return data, study_tables.write_dataset(data, tmp_path)


def study_inputs(paths):
    return pipeline.StudyInputs(
        paths["per_case"], paths["per_lesion"], paths["split"], paths["lesions"], paths["quartiles"]
    )


def load(paths):
    return load_study(paths["per_case"], paths["per_lesion"], paths["split"], paths["lesions"], paths["quartiles"])


def test_round_trip_keeps_string_ids(tmp_path):
    data = study_tables.dataset_from_rows(
        "toy",
        ["001", "002"],
        [("001", 1, 0.01)],
        {("m", 0): {}, ("n", 0): {}},
        {
            ("m", 0): [{"case_id": "001", "kind": "reference", "lesion_id": 1, "detected": True}],
            ("n", 0): [{"case_id": "001", "kind": "reference", "lesion_id": 1}],
        },
    )
    paths = study_tables.write_dataset(data, tmp_path)
    study = load(paths)
    assert study["toy"].test_cases == ("001", "002")
    assert study["toy"].models == ("m", "n") and study["toy"].seeds == (0,)
    assert study["toy"].per_case["case_id"].tolist()[:2] == ["001", "002"]


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("drop_case", "case list differs from the test split"),
        ("nan_metric", "column 'hd95' is empty or NaN"),
        ("count_mismatch", "lesion counts of case"),
        ("missing_lesion", "reference lesions differ from those of"),
        ("unknown_lesion", "reference lesions that are not test lesions"),
        ("stale_quartiles", "do not follow by rule"),
        ("bad_kind", "column 'kind' must be one of"),
    ],
)
def test_broken_inputs_name_the_file(tmp_path, breakage, message):
    _, paths = written(tmp_path)
    pc_path, pl_path = paths["per_case"][1], paths["per_lesion"][1]
    pc, pl = pd.read_csv(pc_path, dtype={"case_id": str}), pd.read_csv(pl_path, dtype={"case_id": str})
    target = pc_path
    if breakage == "drop_case":
        pc = pc.iloc[1:]
    elif breakage == "nan_metric":
        pc.loc[2, "hd95"] = np.nan
    elif breakage == "count_mismatch":
        pc.loc[0, "n_fp_lesions"] += 1
    elif breakage == "missing_lesion":
        pl = pl.drop(index=pl.index[pl.kind == "reference"][0])
        target = pl_path
    elif breakage == "unknown_lesion":
        pl.loc[pl.index[pl.kind == "reference"][0], "lesion_id"] = 99
        target = pl_path
    elif breakage == "stale_quartiles":
        q = pd.read_csv(paths["quartiles"][0])
        q.loc[0, "q25"] *= 1.5
        q.to_csv(paths["quartiles"][0], index=False)
        target = paths["quartiles"][0]
    elif breakage == "bad_kind":
        pl.loc[0, "kind"] = "fp"
        target = pl_path
    pc.to_csv(pc_path, index=False)
    pl.to_csv(pl_path, index=False)
    with pytest.raises(StudyTableError, match=message) as err:
        load(paths)
    assert str(target) in str(err.value)


def test_lesion_left_out_by_every_model_is_excluded(tmp_path, caplog):
    data = study_tables.dataset_from_rows(
        "toy",
        ["c1", "c2"],
        [("c1", 1, 0.01), ("c1", 2, 0.02), ("c2", 1, 0.03)],
        {("m", 0): {}, ("n", 0): {}},
        {
            key: [
                {"case_id": "c1", "kind": "reference", "lesion_id": 1, "detected": True},
                {"case_id": "c2", "kind": "reference", "lesion_id": 1},
            ]
            for key in (("m", 0), ("n", 0))
        },
    )
    study = load(study_tables.write_dataset(data, tmp_path))  # c1/2 has no row (under the ignore mask)
    assert list(zip(study["toy"].reference.case_id, study["toy"].reference.lesion_id)) == [("c1", 1), ("c2", 1)]
    assert "1 of 3 test lesions" in caplog.text
    assert strata.case_sums(study["toy"]).n_lesions("overall") == 2


def test_missing_seed_of_a_model_is_an_error(tmp_path):
    data = study_tables.make_dataset("toy", n_cases=6, models=("a", "b"), seeds=(0, 1), seed=2)
    del data["per_case"][("b", 1)], data["per_lesion"][("b", 1)]
    paths = study_tables.write_dataset(data, tmp_path)
    with pytest.raises(StudyTableError, match=r"every model needs every seed.*\('b', 1\)"):
        load(paths)


def test_pipeline_writes_every_table_stably(tmp_path):
    _, p1 = written(tmp_path / "in", name="alpha", seeds=(0, 1))
    _, p2 = written(tmp_path / "in", name="beta", seed=5, seeds=(0, 1))
    inputs = study_inputs({k: p1[k] + p2[k] for k in p1})
    stats = {"bootstrap_resamples": 100, "bootstrap_seed": 7, "confidence": 0.95, "top_k": 2}
    claim = {
        "min_lesions": 10,
        "dice_tie": 0.01,
        "seed_sd_factor": 2.0,
        "min_boundary_spread_pct": 10.0,
        "separation_ratio": 2.0,
        "alpha": 0.05,
        "permutations": 99,
        "permutation_seed": 3,
        "resolution_floor_voxels": 0.5,
    }
    prepared = prepared_meta(tmp_path / "data", inputs)
    out = tmp_path / "out"
    files = [
        out / f
        for f in (
            "overall.csv",
            "strat.csv",
            "small.csv",
            "rank.csv",
            "summary.csv",
            "boot.csv",
            "study.csv",
            "datasets.csv",
            "sanity.csv",
            "claim.csv",
        )
    ]
    for _ in range(2):
        pipeline.write_overall_metrics(inputs, files[0], stats)
        pipeline.write_size_stratified(inputs, files[1], files[2], claim)
        pipeline.write_ranking(inputs, files[3], files[4], claim)
        pipeline.write_robustness(inputs, files[5], stats, claim)
        pipeline.write_study_summary(inputs, files[6], files[7], stats, claim)
        pipeline.write_sanity_checks(inputs, p1["provenance"] + p2["provenance"], files[2], files[8], claim)
        pipeline.write_claim_check(inputs, prepared, files[6], files[8], files[9], claim)
        if _ == 0:
            first = [f.read_bytes() for f in files]
    assert [f.read_bytes() for f in files] == first
    for f in files:
        df = pd.read_csv(f)
        assert len(df), f
        empty = df.drop(columns=["p_value", "lesions_needed"], errors="ignore").isna().any(axis=1)
        assert not empty.any() or (df.loc[empty, "n_lesions"] == 0).all(), f
    overall = pd.read_csv(files[0])
    assert sorted(overall.dataset.unique()) == ["alpha", "beta"]
    assert (overall.n_seeds == 2).all() and (overall.seed_sd > 0).any()
    strat = pd.read_csv(files[1])
    assert strat.dataset.unique().tolist() == ["alpha", "beta", "pooled"]
    boot = pd.read_csv(files[5])
    assert boot.top_k_pair.sum() == len(boot) // 3  # 1 of 3 pairs is within the top 2
    sanity = pd.read_csv(files[8])
    assert len(sanity) == 2 * 7
    assert set(sanity.loc[sanity.check != "small_lesions", "status"]) == {"pass"}
    verdict = pd.read_csv(files[9])
    assert verdict.dataset.tolist() == ["alpha"] * 5 + ["beta"] * 5 + ["pooled"] * 5
    assert verdict.loc[verdict.finding == "dice_tie", "p_value"].isna().all()  # a bound, not a test
    assert (verdict.loc[verdict.finding != "dice_tie", "verdict"] == "inconclusive").all()  # 0-1 common Q1
    assert (verdict.alpha == 0.05).all()
    with pytest.raises(StudyTableError, match=r"claim block lacks \['dice_tie'"):
        pipeline.write_claim_check(inputs, prepared, files[6], files[8], files[9], {"min_lesions": 10})


def prepared_meta(root, inputs) -> list:
    """A prepared folder per data set holding only each test case's meta.json (the claim check reads the
    voxel spacing there), spacing 1 mm."""
    folders = []
    for split in inputs.split:
        split_df = pd.read_csv(split, dtype={"case_id": str})
        dataset = Path(split).parent.name
        folder = root / dataset / "prepared"
        for case_id in split_df.case_id:
            (folder / case_id).mkdir(parents=True, exist_ok=True)
            (folder / case_id / "meta.json").write_text(json.dumps({"spacing": [1.0, 1.0]}))
        folders.append(folder)
    return folders


@pytest.mark.parametrize("rule", ["train_quartiles", [0.0003, 0.0006, 0.001]])
def test_edge_rules_other_than_test_quartiles_are_checked_and_used(tmp_path, rule):
    data = study_tables.dataset_from_rows(
        "toy",
        ["001", "002"],
        [("001", 1, 0.0002), ("001", 2, 0.0008), ("002", 1, 0.004)],
        {("m", 0): {}},
        {
            ("m", 0): [
                {"case_id": c, "kind": "reference", "lesion_id": i} for c, i in (("001", 1), ("001", 2), ("002", 1))
            ]
        },
        train_cases=("t1",),
        train_lesions=[("t1", 1, 0.0001), ("t1", 2, 0.0005), ("t1", 3, 0.0009)],
        edge_rule=rule,
    )
    paths = study_tables.write_dataset(data, tmp_path)
    edges = load(paths)["toy"].edges
    want = (0.0003, 0.0005, 0.0007) if rule == "train_quartiles" else (0.0003, 0.0006, 0.001)
    assert (edges["q25"], edges["q50"], edges["q75"]) == pytest.approx(want)
    assert edges["edge_rule"] == ("train_quartiles" if rule == "train_quartiles" else "fixed")
    assert (edges["min"], edges["max"], edges["n_lesions"]) == (0.0002, 0.004, 3)
    q = pd.read_csv(paths["quartiles"][0])
    q.loc[0, "max"] = 0.005  # a stale test range is caught whatever the rule
    q.to_csv(paths["quartiles"][0], index=False)
    with pytest.raises(StudyTableError, match="do not follow by rule"):
        load(paths)
