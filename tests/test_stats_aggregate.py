"""Aggregation on tiny hand-made tables: every expected value below is worked out by hand."""

import numpy as np
import pytest

import study_tables
from lesionbench.stats import aggregate, overall, strata
from lesionbench.stats.strata import KEY_INDEX

LESIONS = [("c1", 1, 0.001), ("c1", 2, 0.004), ("c2", 1, 0.002), ("c2", 2, 0.008)]
# np.percentile([1, 2, 4, 8], [25, 50, 75]) = 1.75, 3, 5 (x 1e-3): one lesion per quartile:
# c1/1 -> Q1, c2/1 -> Q2, c1/2 -> Q3, c2/2 -> Q4.
ALPHA_CASES = {"c1": {"dice": 0.8, "hd95": 2.0}, "c2": {"dice": 0.6, "hd95": 4.0}, "c3": {"dice": 0.4, "hd95": 9.0}}
ALPHA_LESIONS = [
    {"case_id": "c1", "kind": "reference", "lesion_id": 1, "detected": True, "dice": 0.5, "hd95": 3.0},
    {"case_id": "c1", "kind": "reference", "lesion_id": 2, "detected": True, "dice": 0.9, "hd95": 1.0},
    {"case_id": "c2", "kind": "reference", "lesion_id": 1, "detected": False, "dice": 0.0, "hd95": 100.0},
    {"case_id": "c2", "kind": "reference", "lesion_id": 2, "detected": True, "dice": 0.7, "hd95": 2.0},
    # exactly on q25 -> Q1; beyond the largest reference lesion -> Q4
    {"case_id": "c1", "kind": "false_positive", "lesion_id": 1, "size_fraction": 0.00175, "dice": 0.0},
    {"case_id": "c3", "kind": "false_positive", "lesion_id": 1, "size_fraction": 0.02, "dice": 0.0},
]
BETA_CASES = {c: {"dice": 0.7, "hd95": 6.0} for c in ("c1", "c2", "c3")}
BETA_LESIONS = [
    {"case_id": "c1", "kind": "reference", "lesion_id": 1, "detected": True, "dice": 0.4, "hd95": 8.0},
    {"case_id": "c1", "kind": "reference", "lesion_id": 2, "detected": True, "dice": 0.6, "hd95": 1.5},
    {"case_id": "c2", "kind": "reference", "lesion_id": 1, "detected": True, "dice": 0.6, "hd95": 1.5},
    {"case_id": "c2", "kind": "reference", "lesion_id": 2, "detected": True, "dice": 0.6, "hd95": 1.5},
    {"case_id": "c2", "kind": "false_positive", "lesion_id": 1, "size_fraction": 0.003},  # exactly q50 -> Q2
]


def tiny(name="tiny", alpha_lesions=ALPHA_LESIONS):
    data = study_tables.dataset_from_rows(
        name,
        ["c1", "c2", "c3"],
        LESIONS,
        {("alpha", 0): ALPHA_CASES, ("beta", 0): BETA_CASES},
        {("alpha", 0): alpha_lesions, ("beta", 0): BETA_LESIONS},
    )
    return strata.case_sums(study_tables.to_tables(data))


def value(df, **where):
    where = {"lesion_set": "all", **where}
    sel = np.ones(len(df), bool)
    for k, v in where.items():
        sel &= (df[k] == v).to_numpy()
    assert sel.sum() == 1, where
    return float(df.loc[sel, "value"].iloc[0])


def test_quartile_assignment_rule():
    q = strata.assign_quartile([0.001, 0.00175, 0.0018, 0.003, 0.004, 0.005, 0.0051, 0.02], 0.00175, 0.003, 0.005)
    assert q.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_per_case_sums_hold_the_hand_values():
    s = tiny()
    alpha = s.models.index("alpha")
    num, den = s.num[alpha, 0], s.den[alpha, 0]
    assert s.case_ids == ("c1", "c2", "c3")
    assert num[:, KEY_INDEX[("all", "overall", "dice")]].tolist() == [0.8, 0.6, 0.4]
    assert num[:, KEY_INDEX[("all", "Q1", "dice")]].tolist() == [0.5, 0.0, 0.0]
    assert den[:, KEY_INDEX[("all", "Q1", "dice")]].tolist() == [1.0, 0.0, 0.0]
    assert num[:, KEY_INDEX[("all", "Q1", "fp_per_case")]].tolist() == [1.0, 0.0, 0.0]
    assert num[:, KEY_INDEX[("all", "Q4", "fp_per_case")]].tolist() == [0.0, 0.0, 1.0]
    assert den[:, KEY_INDEX[("all", "overall", "lesion_recall")]].tolist() == [2.0, 2.0, 0.0]
    assert [s.n_lesions(q) for q in ("overall", "Q1", "Q2", "Q3", "Q4")] == [4, 1, 1, 1, 1]
    # alpha missed c2/1 (Q2): not in its detected set, nor in the common set
    assert den[:, KEY_INDEX[("detected", "Q2", "hd95")]].tolist() == [0.0, 0.0, 0.0]
    assert s.den[s.models.index("beta"), 0][:, KEY_INDEX[("detected", "Q2", "hd95")]].tolist() == [0.0, 1.0, 0.0]
    assert [s.n_lesions(q, "common") for q in ("Q1", "Q2", "Q3", "Q4")] == [1, 0, 1, 1]


def test_point_estimates_by_hand():
    est = aggregate.point_estimates(tiny())
    a = dict(dataset="tiny", model="alpha")
    assert value(est, **a, stratum="overall", metric="dice") == pytest.approx(0.6)
    assert value(est, **a, stratum="overall", metric="hd95") == pytest.approx(5.0)
    assert value(est, **a, stratum="overall", metric="lesion_recall") == pytest.approx(0.75)
    assert value(est, **a, stratum="overall", metric="fp_per_case") == pytest.approx(2 / 3)
    assert value(est, **a, stratum="Q1", metric="dice") == pytest.approx(0.5)
    assert value(est, **a, stratum="Q2", metric="hd95") == pytest.approx(100.0)
    assert value(est, **a, stratum="Q2", metric="lesion_recall") == 0.0
    assert value(est, **a, stratum="Q1", metric="fp_per_case") == pytest.approx(1 / 3)
    assert value(est, **a, stratum="Q2", metric="fp_per_case") == 0.0
    assert value(est, **a, stratum="Q4", metric="fp_per_case") == pytest.approx(1 / 3)
    b = dict(dataset="tiny", model="beta")
    assert value(est, **b, stratum="Q2", metric="fp_per_case") == pytest.approx(1 / 3)
    assert value(est, **b, stratum="Q1", metric="fp_per_case") == 0.0
    assert value(est, **b, stratum="overall", metric="lesion_recall") == 1.0
    row = est[(est.model == "alpha") & (est.lesion_set == "all") & (est.stratum == "Q1") & (est.metric == "dice")].iloc[
        0
    ]
    assert (row.size_low, row.size_high, row.n_lesions, row.n_cases) == (0.001, 0.00175, 1, 3)
    assert row.seed_sd == 0.0 and row.n_seeds == 1


def test_seed_average_and_seed_sd():
    cases = {
        ("alpha", 0): ALPHA_CASES,
        ("beta", 0): BETA_CASES,
        ("alpha", 1): {"c1": {"dice": 1.0}, "c2": {"dice": 0.8}, "c3": {"dice": 0.6}},
        ("beta", 1): BETA_CASES,
    }
    lesions = {
        ("alpha", 0): ALPHA_LESIONS,
        ("beta", 0): BETA_LESIONS,
        ("alpha", 1): [dict(r, detected=True) for r in ALPHA_LESIONS if r["kind"] == "reference"],
        ("beta", 1): BETA_LESIONS,
    }
    s = strata.case_sums(
        study_tables.to_tables(study_tables.dataset_from_rows("tiny", ["c1", "c2", "c3"], LESIONS, cases, lesions))
    )
    est = aggregate.point_estimates(s)
    est = est[est.lesion_set == "all"]
    dice = est[(est.model == "alpha") & (est.stratum == "overall") & (est.metric == "dice")].iloc[0]
    assert dice.value == pytest.approx(0.7)  # (0.6 + 0.8) / 2
    assert dice.seed_sd == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert dice.n_seeds == 2
    recall = est[(est.model == "alpha") & (est.stratum == "overall") & (est.metric == "lesion_recall")].iloc[0]
    assert recall.value == pytest.approx((0.75 + 1.0) / 2)
    fp = est[(est.model == "alpha") & (est.stratum == "overall") & (est.metric == "fp_per_case")].iloc[0]
    assert fp.value == pytest.approx((2 / 3 + 0) / 2)
    beta = est[(est.model == "beta") & (est.stratum == "overall") & (est.metric == "dice")].iloc[0]
    assert beta.seed_sd == 0.0


def test_size_stratified_pooled_and_small_lesion_tables():
    other = [
        dict(r, dice=0.9) if (r["case_id"], r.get("lesion_id"), r["kind"]) == ("c1", 1, "reference") else r
        for r in ALPHA_LESIONS
    ]
    sums = {"tiny": tiny(), "tiny2": tiny("tiny2", other)}
    table = aggregate.size_stratified_metrics(sums)
    assert list(table.columns) == aggregate.STRATIFIED_COLUMNS
    undefined = table.isna().any(axis=1)
    assert undefined.any() and (table.loc[undefined, "n_lesions"] == 0).all()  # only sets without lesions
    assert table.drop(columns=["value", "seed_sd"]).notna().all().all()
    assert list(table.dataset.unique()) == ["tiny", "tiny2", "pooled"]
    assert set(table.quartile) == {"Q1", "Q2", "Q3", "Q4"}
    assert value(table, dataset="pooled", model="alpha", quartile="Q1", metric="dice") == pytest.approx(0.7)
    assert value(table, dataset="pooled", model="alpha", quartile="Q1", metric="fp_per_case") == pytest.approx(2 / 6)
    assert value(table, dataset="tiny2", model="alpha", quartile="Q1", metric="dice") == pytest.approx(0.9)
    pooled = table[(table.dataset == "pooled") & (table.quartile == "Q1")].iloc[0]
    assert (pooled.n_lesions, pooled.n_cases, pooled.size_high) == (2, 6, 0.00175)
    assert table.lesion_set.unique().tolist() == ["all", "detected", "common"]  # sorted in this order per model
    small = aggregate.small_lesion_metrics(table)
    assert list(small.columns) == aggregate.SMALL_COLUMNS
    assert len(small) == len(table[table.quartile == "Q1"])
    assert (small.q1_upper_bound == 0.00175).all()
    # sorted: data set, model, quartile, metric in the metric-list order
    first = table[
        (table.dataset == "tiny") & (table.model == "alpha") & (table.quartile == "Q1") & (table.lesion_set == "all")
    ]
    assert first.metric.tolist() == ["dice", "iou", "hd95", "asd", "contour_f1", "nsd", "lesion_recall", "fp_per_case"]


def test_stratum_without_lesions_keeps_its_rows_flagged_and_empty():
    data = study_tables.dataset_from_rows(
        "one",
        ["c1", "c2"],
        [("c1", 1, 0.01)],
        {("m", 0): {}, ("n", 0): {}},
        {
            ("m", 0): [
                {"case_id": "c1", "kind": "reference", "lesion_id": 1, "detected": True},
                {"case_id": "c2", "kind": "false_positive", "lesion_id": 1, "size_fraction": 0.5},
            ],
            ("n", 0): [{"case_id": "c1", "kind": "reference", "lesion_id": 1}],
        },
    )
    table = aggregate.size_stratified_metrics({"one": strata.case_sums(study_tables.to_tables(data))})
    q4 = table[(table.dataset == "one") & (table.quartile == "Q4") & (table.lesion_set == "all")]
    assert value(q4, model="m", metric="fp_per_case") == 0.5
    lesion_rows = q4[q4.metric != "fp_per_case"]
    assert len(lesion_rows) == 2 * 7 and (lesion_rows.n_lesions == 0).all() and lesion_rows.insufficient_lesions.all()
    assert lesion_rows.value.isna().all() and lesion_rows.seed_sd.isna().all()
    assert not table[table.n_lesions > 0].isna().any().any()
    assert value(table, dataset="one", model="n", quartile="Q1", metric="lesion_recall") == 0.0
    # model n missed the only lesion: nothing is common, n's detected set is empty, m's holds it
    common = table[(table.dataset == "one") & (table.lesion_set == "common") & (table.quartile == "Q1")]
    assert (common.n_lesions == 0).all() and common.value.isna().all()
    assert value(table, dataset="one", model="m", lesion_set="detected", quartile="Q1", metric="dice") == 1.0


def test_overall_metrics_table():
    table = overall.overall_metrics({"tiny": tiny()}, resamples=200, bootstrap_seed=3, confidence=0.9)
    assert list(table.columns) == overall.OVERALL_COLUMNS
    assert not table.isna().any().any()
    assert len(table) == 2 * 8
    beta = table[(table.model == "beta") & (table.metric == "dice")].iloc[0]
    assert (beta.value, beta.ci_low, beta.ci_high) == pytest.approx((0.7, 0.7, 0.7))  # constant over cases
    alpha = table[(table.model == "alpha") & (table.metric == "dice")].iloc[0]
    assert alpha.ci_low < 0.6 < alpha.ci_high
    assert alpha.ci_low >= 0.4 and alpha.ci_high <= 0.8
    assert (table.n_cases == 3).all() and (table.n_lesions == 4).all() and (table.ci_level == 0.9).all()
