"""Paired case bootstrap: known answers, reproducibility, and equality with a naive per-resample loop."""

import numpy as np
import pandas as pd
import pytest

import study_tables
from lesionbench.stats import bootstrap, strata
from lesionbench.stats.strata import KEY_INDEX

LESIONS = [("c1", 1, 0.001), ("c1", 2, 0.004), ("c2", 1, 0.002), ("c3", 1, 0.008), ("c4", 1, 0.003)]
CASES = ["c1", "c2", "c3", "c4", "c5"]


def pair(shift: float, seed_count: int = 1):
    """Two models; ``good`` has Dice, IoU, contour F1, NSD values ``shift`` above ``worse`` (and distances
    ``shift`` below) in every case and lesion."""
    rng = np.random.default_rng(5)
    base_case = {c: {"dice": rng.uniform(0.3, 0.7), "hd95": rng.uniform(2, 8)} for c in CASES}
    base_les = [
        {
            "case_id": c,
            "kind": "reference",
            "lesion_id": i,
            "detected": True,
            "dice": rng.uniform(0.3, 0.7),
            "hd95": rng.uniform(2, 8),
        }
        for c, i, _ in LESIONS
    ]
    cases, lesions = {}, {}
    for s in range(seed_count):
        for model, d in (("good", shift), ("worse", 0.0)):
            cases[(model, s)] = {c: {"dice": v["dice"] + d, "hd95": v["hd95"] - d} for c, v in base_case.items()}
            lesions[(model, s)] = [dict(r, dice=r["dice"] + d, hd95=r["hd95"] - d) for r in base_les]
    data = study_tables.dataset_from_rows("toy", CASES, LESIONS, cases, lesions)
    tables = study_tables.to_tables(data)
    return tables, strata.case_sums(tables)


def rows(df, stratum, metric, lesion_set="all"):
    return df[(df.lesion_set == lesion_set) & (df.stratum == stratum) & (df.metric == metric)]


def test_weight_matrix_is_multinomial_counts():
    w = bootstrap.weight_matrix(7, 500, np.random.default_rng(0))
    assert w.shape == (500, 7)
    assert (w.sum(axis=1) == 7).all() and (w == np.round(w)).all() and (w >= 0).all()
    assert abs(w.mean() - 1.0) < 0.05


def test_constant_positive_difference():
    _, sums = pair(0.1)
    df = bootstrap.pairwise_robustness(sums, bootstrap.case_weights(sums, 300, 1), confidence=0.95, top_k=2)
    for stratum, metric in (("overall", "dice"), ("overall", "hd95"), ("Q1", "dice"), ("Q4", "hd95")):
        r = rows(df, stratum, metric).iloc[0]
        assert (r.pair_first, r.pair_second) == ("good", "worse")
        expect = 0.1 if metric == "dice" else -0.1
        assert r.difference == pytest.approx(expect)
        assert r.better_model == "good"
        assert r.sign_share == 1.0
        assert r.ci_low == pytest.approx(expect) and r.ci_high == pytest.approx(expect)
        assert r.ci_excludes_zero
    assert df.top_k_pair.all()


def test_identical_models_give_zero():
    _, sums = pair(0.0)
    df = bootstrap.pairwise_robustness(sums, bootstrap.case_weights(sums, 300, 1), confidence=0.95, top_k=2)
    assert not df.isna().any().any()
    assert (df.difference == 0.0).all()
    assert (df.ci_low.abs() < 1e-12).all() and (df.ci_high.abs() < 1e-12).all()
    assert (df.sign_share == 1.0).all() and (df.better_model == "tie").all() and not df.ci_excludes_zero.any()
    # a tie under Dice: pair_first is the alphabetically first model
    assert (df.pair_first == "good").all()


def test_reproducible_for_a_fixed_seed_and_seed_dependent():
    sums = strata.case_sums(study_tables.to_tables(study_tables.make_dataset("toy", n_cases=15, seed=1)))
    a = bootstrap.directional_robustness({"toy": sums}, 400, 11, 0.95, 2)
    b = bootstrap.directional_robustness({"toy": sums}, 400, 11, 0.95, 2)
    c = bootstrap.directional_robustness({"toy": sums}, 400, 12, 0.95, 2)
    assert a.equals(b)
    assert a[["difference", "value_a"]].equals(c[["difference", "value_a"]])  # observed: no randomness
    assert not np.allclose(a.ci_low, c.ci_low)


def test_weight_matrix_equals_naive_loop():
    tables = study_tables.to_tables(
        study_tables.make_dataset("toy", n_cases=12, seeds=(0, 1), mean_lesions=2.0, seed=4)
    )
    sums = strata.case_sums(tables)
    w = bootstrap.weight_matrix(sums.n_cases, 40, np.random.default_rng(9))
    fast = bootstrap.ratio_statistics(sums.num, sums.den, w)
    slow = bootstrap.naive_bootstrap(tables, w)
    assert np.isnan(fast).any()  # some resamples miss a quartile: both say undefined
    common = [k for k, key in enumerate(strata.KEYS) if key[0] == "common"]
    assert not np.isnan(fast[:, :, common]).all()  # the common set is exercised too
    assert np.array_equal(np.isnan(fast), np.isnan(slow))
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_percentile_ci_leaves_out_undefined_resamples():
    samples = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, np.nan], [4.0, 7.0]])
    low, high, n_valid = bootstrap.percentile_ci(samples, 0.5)
    assert n_valid.tolist() == [4, 2]
    assert low.tolist() == pytest.approx([np.quantile([1, 2, 3, 4], 0.25), np.quantile([5, 7], 0.25)])
    assert high.tolist() == pytest.approx([np.quantile([1, 2, 3, 4], 0.75), np.quantile([5, 7], 0.75)])


def test_sign_share_and_top_k_flags():
    tables = study_tables.to_tables(study_tables.make_dataset("toy", n_cases=25, seed=2))
    sums = strata.case_sums(tables)
    df = bootstrap.pairwise_robustness(sums, bootstrap.case_weights(sums, 500, 3), 0.9, top_k=3)
    assert not df.isna().any().any()
    assert len(df[["pair_first", "pair_second"]].drop_duplicates()) == 6
    assert df.top_k_pair.sum() == 3 * len(df) // 6  # 3 of the 6 pairs are among the top 3 by Dice
    assert ((df.sign_share >= 0) & (df.sign_share <= 1)).all()
    dice = rows(df, "overall", "dice")
    assert (dice.difference >= 0).all()  # pair_first is ranked higher by overall Dice
    assert (dice.dice_rank_a < dice.dice_rank_b).all()
    # sign share agrees with the resamples it summarises
    weights = bootstrap.case_weights(sums, 500, 3)
    _, samples = bootstrap.resample_dataset(sums, weights)
    _, subset = bootstrap.resample_dataset(sums, weights, np.array([KEY_INDEX[("all", "overall", "dice")]]))
    np.testing.assert_array_equal(subset[:, :, 0], samples[:, :, KEY_INDEX[("all", "overall", "dice")]])
    models = list(sums.models)
    r = dice.iloc[0]
    k = KEY_INDEX[("all", "overall", "dice")]
    d = samples[:, models.index(r.pair_first), k] - samples[:, models.index(r.pair_second), k]
    assert r.sign_share == pytest.approx(np.mean(d > 0))
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(np.quantile(d, [0.05, 0.95])))


def test_pooled_rows_resample_each_data_set_within_itself():
    """The pooled data set's robustness rows come from the data sets' own weight matrices side by side: the
    observed difference is the pooled estimate, and the sign share and CI are those of that stratified
    resampling."""
    sums = {
        name: strata.case_sums(study_tables.to_tables(study_tables.make_dataset(name, n_cases=n, seed=s)))
        for name, n, s in (("d1", 12, 3), ("d2", 20, 4))
    }
    table = bootstrap.directional_robustness(sums, 300, 7, 0.9, 2)
    assert table.dataset.drop_duplicates().tolist() == ["d1", "d2", "pooled"]
    per_dataset = table[table.dataset == "d1"].reset_index(drop=True)
    alone = bootstrap.directional_robustness({"d1": sums["d1"]}, 300, 7, 0.9, 2)
    pd.testing.assert_frame_equal(per_dataset, alone[alone.dataset == "d1"].reset_index(drop=True))

    pooled = strata.pool([sums["d1"], sums["d2"]])
    weights = np.concatenate([bootstrap.case_weights(sums[d], 300, 7) for d in ("d1", "d2")], axis=1)
    assert weights.shape == (300, 32) and (weights[:, :12].sum(axis=1) == 12).all()  # d1 drawn from d1
    k = KEY_INDEX[("all", "overall", "dice")]
    observed, samples = bootstrap.resample_dataset(pooled, weights)
    r = rows(table[table.dataset == "pooled"], "overall", "dice").iloc[0]
    a, b = list(pooled.models).index(r.pair_first), list(pooled.models).index(r.pair_second)
    assert r.difference == pytest.approx(observed[a, k] - observed[b, k])
    d = samples[:, a, k] - samples[:, b, k]
    assert r.sign_share == pytest.approx(np.mean(np.sign(d) == np.sign(r.difference)))
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(np.quantile(d, [0.05, 0.95])))
