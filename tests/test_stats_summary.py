"""Study summary, data-set table and study provenance on hand-made tables."""

import json
import math

import pandas as pd
import pytest

import study_tables
from lesionbench.stats import aggregate, provenance, strata, summary
from test_stats_lesion_sets import LESIONS, A, B


def hand():
    cases = {
        ("a", 0): {"c1": {"dice": 0.8, "hd95": 2.0}, "c2": {"dice": 0.8, "hd95": 2.0}},
        ("b", 0): {"c1": {"dice": 0.79, "hd95": 3.0}, "c2": {"dice": 0.79, "hd95": 3.0}},
    }
    data = study_tables.dataset_from_rows("hand", ["c1", "c2"], LESIONS, cases, {("a", 0): A, ("b", 0): B})
    tables = study_tables.to_tables(data)
    return tables, strata.case_sums(tables)


def test_relative_spread_pct():
    assert summary.relative_spread_pct([2.0, 6.0, 3.0]) == pytest.approx(200.0)
    assert summary.relative_spread_pct([0.0, 0.0]) == 0.0
    assert math.isinf(summary.relative_spread_pct([0.0, 1.0]))


def test_summary_rows_by_hand():
    _, sums = hand()
    est = aggregate.all_estimates({"hand": sums}, min_lesions=2, pooled=False)
    table = summary.study_summary(est, top_k=2)
    assert list(table.columns) == summary.SUMMARY_COLUMNS
    assert list(zip(table.setting, table.lesion_set)) == [
        ("all_cases", "all"),
        ("Q4", "all"),
        ("Q4", "detected"),
        ("Q4", "common"),
        ("Q1", "all"),
        ("Q1", "detected"),
        ("Q1", "common"),
    ]
    t = table.set_index(["setting", "lesion_set"])
    overall = t.loc[("all_cases", "all")]
    assert overall.top_models == "a > b"
    assert overall.dice_spread == pytest.approx(0.01)
    assert overall.hd95_spread_pct == pytest.approx(50.0)  # (3 - 2) / 2
    assert overall.recall_spread_pp == pytest.approx(25.0)  # 8/8 vs 6/8 lesions found
    assert (overall.n_lesions, overall.insufficient_lesions) == (8, False)
    q1 = t.loc[("Q1", "common")]  # the one lesion c1/1
    assert q1.n_lesions == 1 and q1.insufficient_lesions
    assert q1.hd95_spread_pct == pytest.approx(200.0)  # 2 vs 6
    assert q1.dice_spread == pytest.approx(0.4)  # 0.9 vs 0.5
    assert q1.recall_spread_pp == pytest.approx(50.0)  # Q1 recall 1.0 vs 0.5
    assert q1.hd95_agrees_with_dice and q1.dice_leader_hd95_rank == 1
    q1_all = t.loc[("Q1", "all")]
    assert q1_all.hd95_spread_pct == pytest.approx(((6 + 100) / 2 - 3) / 3 * 100)
    q4 = t.loc[("Q4", "common")]
    assert q4.hd95_spread_pct == pytest.approx(200.0)  # 3 vs 9 on c2/3
    assert q4.mean_kendall_tau == pytest.approx(1.0)


def test_summary_keeps_a_row_without_common_lesions():
    b_misses_q1 = [dict(r, detected=False) if r["lesion_id"] == 1 and r["case_id"] == "c1" else r for r in B]
    data = study_tables.dataset_from_rows(
        "hand",
        ["c1", "c2"],
        LESIONS,
        {("a", 0): {"c1": {}, "c2": {}}, ("b", 0): {"c1": {}, "c2": {}}},
        {("a", 0): A, ("b", 0): b_misses_q1},
    )
    est = aggregate.all_estimates({"hand": strata.case_sums(study_tables.to_tables(data))}, pooled=False)
    row = summary.study_summary(est, 2).set_index(["setting", "lesion_set"]).loc[("Q1", "common")]
    assert row.n_lesions == 0 and row.insufficient_lesions and pd.isna(row.hd95_spread_pct)


def test_dataset_table():
    tables, sums = hand()
    t = summary.dataset_table({"hand": tables, "again": tables}, {"hand": sums, "again": sums})
    assert list(t.columns) == summary.DATASET_COLUMNS
    row = t.set_index("dataset").loc["hand"]
    assert (row.n_test_cases, row.n_test_lesions, row.n_q1_lesions, row.n_common_q1_lesions) == (2, 8, 2, 1)
    assert row.q1_upper_bound_pct == pytest.approx(0.275)  # q25 of 1..8 x 1e-3 = 2.75e-3
    pooled = t.set_index("dataset").loc["pooled"]
    assert (pooled.n_test_cases, pooled.n_test_lesions, pooled.n_common_q1_lesions) == (4, 16, 2)


def test_study_provenance(tmp_path):
    data = study_tables.make_dataset("toy", n_cases=4, models=("a", "b"), seed=1)
    paths = study_tables.write_dataset(data, tmp_path / "in")
    config = {"claim": {"min_lesions": 10}, "statistics": {"top_k": 3}, "results": "results"}
    record = provenance.write_study_provenance(
        paths["provenance"], config, tmp_path / "p.json", code_dir=tmp_path, quartiles_paths=paths["quartiles"]
    )
    on_disk = json.loads((tmp_path / "p.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    toy = on_disk["metric_settings"]["toy"]
    assert len(toy) == 1 and toy[0]["runs"] == ["a/seed0", "b/seed0"]
    assert toy[0]["settings"]["contour_tolerance_mm"] == 1.0
    assert on_disk["git_commit"] == "unknown"  # tmp_path is no git checkout
    assert on_disk["packages"]["numpy"] != "not installed"
    assert on_disk["claim"] == {"min_lesions": 10}
    strat = on_disk["stratification"]  # rule and edges of every data set
    assert strat["edges"] == "test_quartiles"
    q = pd.read_csv(paths["quartiles"][0]).iloc[0]
    assert strat["by_dataset"]["toy"]["edge_rule"] == "test_quartiles"
    assert strat["by_dataset"]["toy"]["q25"] == pytest.approx(q["q25"])
    other = provenance.config_hash({**config, "claim": {"min_lesions": 5}})
    assert on_disk["config_sha256"] == provenance.config_hash(dict(reversed(list(config.items()))))
    assert other != on_disk["config_sha256"]
    assert len(provenance.git_state(provenance.CODE_DIR)["git_commit"]) == 40  # this checkout
