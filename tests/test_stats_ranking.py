"""Model orders, tie rule, reversal detection, Kendall tau and the reversal summary."""

import pandas as pd
import pytest

from lesionbench.stats import ranking


def est(rows, lesion_set="all", n_lesions=12):
    df = pd.DataFrame(rows, columns=["dataset", "model", "stratum", "metric", "value"])
    return df.assign(
        lesion_set=lesion_set,
        n_lesions=n_lesions,
        insufficient_lesions=n_lesions < 10,
        size_bins="test_quartiles",
        size_low=0.0,
        size_high=1.0,
    )


def test_order_directions_and_ties():
    assert ranking.order_models({"a": 0.7, "b": 0.8, "c": 0.75}, "dice") == ["b", "c", "a"]
    assert ranking.order_models({"a": 3.0, "b": 1.0, "c": 2.0}, "hd95") == ["b", "c", "a"]
    # exact tie, and a tie within 1e-10 (floating-point noise): broken by model name
    assert ranking.order_models({"zeta": 0.8, "alpha": 0.8, "mid": 0.5}, "dice") == ["alpha", "zeta", "mid"]
    assert ranking.order_models({"b": 2.0 + 1e-13, "a": 2.0}, "asd") == ["a", "b"]
    assert ranking.order_models({"b": 2.0, "a": 2.0 + 1e-6}, "asd") == ["b", "a"]


def test_kendall_tau_values():
    assert ranking.kendall_tau(["a", "b", "c", "d"], ["a", "b", "c", "d"]) == pytest.approx(1.0)
    assert ranking.kendall_tau(["a", "b", "c", "d"], ["d", "c", "b", "a"]) == pytest.approx(-1.0)
    # one swapped adjacent pair out of 6 pairs: (5 - 1) / 6
    assert ranking.kendall_tau(["a", "b", "c", "d"], ["b", "a", "c", "d"]) == pytest.approx(4 / 6)
    assert ranking.kendall_tau(["a", "b", "c"], ["c", "a", "b"]) == pytest.approx(-1 / 3)
    assert ranking.kendall_tau(["a"], ["a"]) == 1.0
    with pytest.raises(ValueError):
        ranking.kendall_tau(["a", "b"], ["a", "c"])


def test_reversal_detection():
    rows = []
    for model, dice, hd95, asd, f1 in [
        ("a", 0.80, 9.0, 2.0, 0.70),
        ("b", 0.80, 3.0, 1.0, 0.60),
        ("c", 0.70, 5.0, 3.0, 0.90),
    ]:
        for metric, v in (("dice", dice), ("hd95", hd95), ("asd", asd), ("contour_f1", f1)):
            rows.append(("d1", model, "Q1", metric, v))
    # same values in a second stratum, with HD95 agreeing with Dice
    rows += [
        ("d1", m, "overall", k, (v if k != "hd95" else {"a": 1.0, "b": 2.0, "c": 3.0}[m])) for _, m, _, k, v in rows
    ]
    table = ranking.ranking_reversals(est(rows))
    assert table.stratum.tolist() == ["overall"] * 3 + ["Q1"] * 3
    assert table.metric.tolist() == ["hd95", "asd", "contour_f1"] * 2
    q1 = table[table.stratum == "Q1"].set_index("metric")
    # Dice tie between a and b broken by name: a first
    assert q1.loc["hd95", "dice_order"] == "a > b > c"
    assert q1.loc["hd95", "metric_order"] == "b > c > a"
    assert bool(q1.loc["hd95", "order_changed"]) and bool(q1.loc["hd95", "leader_changed"])
    assert q1.loc["hd95", "dice_leader_rank"] == 3
    assert q1.loc["hd95", "kendall_tau"] == pytest.approx(-1 / 3)
    assert q1.loc["asd", "metric_order"] == "b > a > c"
    assert q1.loc["asd", "dice_leader_rank"] == 2
    assert q1.loc["asd", "kendall_tau"] == pytest.approx(1 / 3)
    assert q1.loc["contour_f1", "metric_leader"] == "c"
    assert q1.loc["hd95", "dice_spread"] == pytest.approx(0.1)
    assert q1.loc["hd95", "metric_spread"] == pytest.approx(6.0)
    overall = table[table.stratum == "overall"].set_index("metric")
    assert not overall.loc["hd95", "order_changed"] and overall.loc["hd95", "kendall_tau"] == pytest.approx(1.0)
    assert overall.loc["hd95", "dice_leader_rank"] == 1


def test_summary_counts_datasets_and_any():
    rows = []
    for ds, hd in (("d1", {"a": 1.0, "b": 2.0}), ("d2", {"a": 2.0, "b": 1.0}), ("pooled", {"a": 2.0, "b": 1.0})):
        for m in ("a", "b"):
            rows += [
                (ds, m, "Q1", "dice", {"a": 0.9, "b": 0.8}[m]),
                (ds, m, "Q1", "hd95", hd[m]),
                (ds, m, "Q1", "asd", hd[m]),
                (ds, m, "Q1", "contour_f1", {"a": 0.5, "b": 0.4}[m]),
            ]
    summary = ranking.reversal_summary(ranking.ranking_reversals(est(rows))).set_index("metric")
    assert summary.loc["hd95", "n_datasets"] == 2  # pooled is not counted
    assert (summary.lesion_set == "all").all() and (summary.n_insufficient == 0).all()
    assert summary.loc["hd95", "n_leader_changed"] == 1
    assert summary.loc["hd95", "share_leader_changed"] == 0.5
    assert summary.loc["hd95", "datasets_leader_changed"] == "d2"
    assert summary.loc["hd95", "mean_kendall_tau"] == pytest.approx(0.0)
    assert summary.loc["contour_f1", "n_leader_changed"] == 0
    assert summary.loc["contour_f1", "datasets_leader_changed"] == "none"
    assert summary.loc["any", "n_leader_changed"] == 1
    assert summary.loc["any", "mean_kendall_tau"] == pytest.approx(0.0)  # (1 + -1) / 2 of the lowest taus


def test_lesion_sets_are_ranked_apart_and_empty_sets_have_no_row():
    rows = [
        ("d1", m, "Q1", k, v)
        for m, vals in (("a", (0.9, 1.0)), ("b", (0.8, 2.0)))
        for k, v in zip(("dice", "hd95"), vals)
    ]
    common = est([(d, m, s, k, (v if m == "a" or k == "dice" else 0.5)) for d, m, s, k, v in rows], "common", 3)
    empty = est([("d1", m, "Q2", k, float("nan")) for m in ("a", "b") for k in ("dice", "hd95")], "common", 0)
    table = ranking.ranking_reversals(pd.concat([est(rows), common, empty], ignore_index=True))
    assert table.lesion_set.tolist() == ["all", "common"]
    assert table.set_index("lesion_set").loc["common", "metric_order"] == "b > a"
    assert table.set_index("lesion_set").loc["common", "insufficient_lesions"]
    assert table.set_index("lesion_set").loc["common", "n_lesions"] == 3
    summary = ranking.reversal_summary(table)
    assert summary[summary.metric == "hd95"].set_index("lesion_set").loc["common", "n_insufficient"] == 1
