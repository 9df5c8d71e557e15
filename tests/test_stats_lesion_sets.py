"""Lesion sets (all / detected / common) on a small hand-made per-lesion table: means, counts, flags, the
long-form per-case sums, and the paired tables computed on the sets that are the same for every model."""

import numpy as np
import pytest

import study_tables
from lesionbench.stats import aggregate, bootstrap, ranking, strata

# Sizes 1..8 (x 1e-3): np.percentile -> q25 2.75, q50 4.5, q75 6.25, so Q1 = c1/1, c1/2; Q2 = c1/3, c1/4;
# Q3 = c2/1, c2/2; Q4 = c2/3, c2/4.
LESIONS = [("c1", i, i * 1e-3) for i in (1, 2, 3, 4)] + [("c2", i, (i + 4) * 1e-3) for i in (1, 2, 3, 4)]
CASES = {"c1": {}, "c2": {}}
PENALTY = 100.0


def ref(case, lesion, hd95=None, dice=0.8):
    """A reference-lesion row: detected with the given HD95, or a miss (Dice 0, HD95 = penalty)."""
    if hd95 is None:
        return {
            "case_id": case,
            "kind": "reference",
            "lesion_id": lesion,
            "detected": False,
            "dice": 0.0,
            "hd95": PENALTY,
        }
    return {"case_id": case, "kind": "reference", "lesion_id": lesion, "detected": True, "dice": dice, "hd95": hd95}


# Model a detects every lesion; model b misses c1/2 (Q1) and c2/4 (Q4).
A = [
    ref("c1", 1, 2.0, 0.9),
    ref("c1", 2, 4.0, 0.7),
    ref("c1", 3, 1.0),
    ref("c1", 4, 1.0),
    ref("c2", 1, 1.0),
    ref("c2", 2, 1.0),
    ref("c2", 3, 3.0),
    ref("c2", 4, 5.0),
]
B = [
    ref("c1", 1, 6.0, 0.5),
    ref("c1", 2),
    ref("c1", 3, 1.0),
    ref("c1", 4, 1.0),
    ref("c2", 1, 1.0),
    ref("c2", 2, 1.0),
    ref("c2", 3, 9.0),
    ref("c2", 4),
]


def sums_of(lesions_by_run, cases=None):
    cases = cases or {run: CASES for run in lesions_by_run}
    data = study_tables.dataset_from_rows("hand", ["c1", "c2"], LESIONS, cases, lesions_by_run)
    return strata.case_sums(study_tables.to_tables(data))


def pick(df, **where):
    sel = np.ones(len(df), bool)
    for k, v in where.items():
        sel &= (df[k] == v).to_numpy()
    assert sel.sum() == 1, where
    return df[sel].iloc[0]


def test_membership_marks_detected_and_common():
    data = study_tables.dataset_from_rows(
        "hand", ["c1", "c2"], LESIONS, {("a", 0): CASES, ("b", 0): CASES}, {("a", 0): A, ("b", 0): B}
    )
    m = strata.lesion_membership(study_tables.to_tables(data))
    assert list(m.columns) == list(strata.MEMBERSHIP_COLUMNS)
    b = m[m.model == "b"].set_index(["case_id", "lesion_id"])
    assert b.loc[("c1", 2), "detected"] == False and b.loc[("c1", 1), "detected"] == True  # noqa: E712
    common = m[m.model == "a"].set_index(["case_id", "lesion_id"])["common"]
    assert sorted(common[~common].index) == [("c1", 2), ("c2", 4)]
    assert m[m.model == "a"].quartile.tolist() == ["Q1", "Q1", "Q2", "Q2", "Q3", "Q3", "Q4", "Q4"]


def test_all_detected_common_means_and_counts():
    est = aggregate.point_estimates(sums_of({("a", 0): A, ("b", 0): B}), min_lesions=2)
    q1 = dict(metric="hd95", stratum="Q1")
    # all: a miss scores the penalty
    assert pick(est, model="a", lesion_set="all", **q1).value == pytest.approx(3.0)
    assert pick(est, model="b", lesion_set="all", **q1).value == pytest.approx((6.0 + PENALTY) / 2)
    # detected: each model's own hits; b's count is 1
    assert pick(est, model="a", lesion_set="detected", **q1).value == pytest.approx(3.0)
    row = pick(est, model="b", lesion_set="detected", **q1)
    assert (row.value, row.n_lesions) == (pytest.approx(6.0), 1)
    assert pick(est, model="a", lesion_set="detected", **q1).n_lesions == 2
    # common: c1/1 only, the same lesion for both models
    for model, expect in (("a", 2.0), ("b", 6.0)):
        row = pick(est, model=model, lesion_set="common", **q1)
        assert (row.value, row.n_lesions) == (pytest.approx(expect), 1)
    assert pick(est, model="b", lesion_set="common", stratum="Q1", metric="dice").value == pytest.approx(0.5)
    assert pick(est, model="a", lesion_set="common", stratum="Q4", metric="hd95").value == pytest.approx(3.0)
    assert pick(est, model="b", lesion_set="common", stratum="Q4", metric="hd95").value == pytest.approx(9.0)
    # recall and FP per case exist in set `all` only
    assert set(est.loc[est.lesion_set != "all", "metric"]) == {"dice", "iou", "hd95", "asd", "contour_f1", "nsd"}
    assert pick(est, model="b", lesion_set="all", stratum="Q1", metric="lesion_recall").value == 0.5


def test_insufficient_lesions_flag():
    est = aggregate.point_estimates(sums_of({("a", 0): A, ("b", 0): B}), min_lesions=2)
    q1 = dict(stratum="Q1", metric="hd95")
    assert not pick(est, model="a", lesion_set="all", **q1).insufficient_lesions  # 2 lesions
    assert pick(est, model="a", lesion_set="common", **q1).insufficient_lesions  # 1 < 2
    assert pick(est, model="b", lesion_set="detected", **q1).insufficient_lesions
    assert not pick(est, model="a", lesion_set="detected", **q1).insufficient_lesions
    assert pick(est, model="b", lesion_set="all", stratum="Q1", metric="lesion_recall").n_lesions == 2
    # case-level rows and FP per case are never flagged, whatever the threshold
    strict = aggregate.point_estimates(sums_of({("a", 0): A, ("b", 0): B}), min_lesions=100)
    overall = strict[(strict.stratum == "overall") & (strict.metric != "lesion_recall")]
    assert not overall.insufficient_lesions.any()
    assert not strict[strict.metric == "fp_per_case"].insufficient_lesions.any()
    assert strict[(strict.stratum == "Q2") & (strict.metric != "fp_per_case")].insufficient_lesions.all()


def test_seeds_detected_is_the_mean_of_per_seed_means_and_common_spans_seeds():
    b1 = [ref("c1", 1, 4.0), ref("c1", 2, 8.0)] + B[2:]  # seed 1 of b finds c1/2 as well
    runs = {("a", 0): A, ("a", 1): A, ("b", 0): B, ("b", 1): b1}
    est = aggregate.point_estimates(sums_of(runs), min_lesions=2)
    q1 = dict(model="b", stratum="Q1", metric="hd95")
    row = pick(est, lesion_set="detected", **q1)
    assert row.value == pytest.approx((6.0 + (4.0 + 8.0) / 2) / 2)  # per-seed means 6 and 6
    assert row.n_lesions == 1  # the smaller per-seed count
    assert row.seed_sd == pytest.approx(0.0)
    row = pick(est, lesion_set="common", **q1)  # c1/2 missed in seed 0: not common
    assert (row.value, row.n_lesions) == (pytest.approx((6.0 + 4.0) / 2), 1)
    assert row.seed_sd == pytest.approx(np.std([6.0, 4.0], ddof=1))


def test_long_form_sums_give_every_statistic():
    sums = sums_of({("a", 0): A, ("b", 0): B})
    frame = strata.sums_frame(sums)
    assert list(frame.columns) == list(strata.SUMS_COLUMNS)
    assert len(frame) == 2 * 1 * 2 * len(strata.KEYS)
    est = aggregate.point_estimates(sums)
    g = frame.groupby(["model", "lesion_set", "stratum", "metric"])[["metric_sum", "count"]].sum()
    for row in est[est.n_lesions > 0].itertuples():
        s = g.loc[(row.model, row.lesion_set, row.stratum, row.metric)]
        assert s.metric_sum / s["count"] == pytest.approx(row.value)
    c = frame[
        (frame.model == "b") & (frame.lesion_set == "common") & (frame.stratum == "Q1") & (frame.metric == "hd95")
    ].set_index("case_id")
    assert (c.loc["c1", "metric_sum"], c.loc["c1", "count"], c.loc["c2", "count"]) == (6.0, 1.0, 0.0)


def test_pooled_common_keeps_each_datasets_own_set():
    s1 = sums_of({("a", 0): A, ("b", 0): B})
    s2 = sums_of({("a", 0): A, ("b", 0): A})  # here b finds everything
    pooled = strata.pool([s1, s2])
    assert pooled.n_lesions("Q1", "common") == 1 + 2
    est = aggregate.point_estimates(pooled)
    assert pick(est, model="b", lesion_set="common", stratum="Q1", metric="hd95").value == pytest.approx(
        (6.0 + 2.0 + 4.0) / 3
    )


def test_rankings_and_bootstrap_run_on_all_and_common():
    sums = sums_of({("a", 0): A, ("b", 0): B})
    rev = ranking.ranking_reversals(aggregate.ranking_estimates({"hand": sums}, min_lesions=2))
    assert set(rev.lesion_set) == {"all", "common"}
    row = pick(rev, dataset="hand", lesion_set="common", stratum="Q1", metric="hd95")
    assert (row.n_lesions, row.insufficient_lesions, row.metric_order) == (1, True, "a > b")
    rob = bootstrap.pairwise_robustness(sums, bootstrap.case_weights(sums, 50, 1), 0.9, top_k=2, min_lesions=2)
    assert set(rob.lesion_set) == {"all", "common"}
    row = pick(rob, lesion_set="common", stratum="Q4", metric="hd95")
    assert row.n_lesions == 1 and row.insufficient_lesions
    assert abs(row.difference) == pytest.approx(6.0)  # 3 vs 9 on the one common Q4 lesion
