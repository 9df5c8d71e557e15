"""Paired tests (Wilcoxon, Holm, median difference), ranking schemes and rank stability on known answers."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

import study_tables
from lesionbench.stats import bootstrap, paired_tests, schemes, stability, strata
from lesionbench.stats.strata import KEYS, PAIRED_SETS, key_indices
from lesionbench.stats.tables import HIGHER_IS_BETTER, QUARTILES


def test_holm_hand_case():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> running max 0.06
    got = paired_tests.holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, ties keep their order, one test is unadjusted
    assert paired_tests.holm([0.5, 0.5, 0.9]) == pytest.approx([1.0, 1.0, 1.0])
    assert paired_tests.holm([0.2]) == pytest.approx([0.2])
    assert paired_tests.holm([]).size == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        paired_tests.holm([0.1, np.nan])


def test_holm_families_adjust_within_each_family():
    tests = pd.DataFrame({"dataset": ["a", "a", "a", "b"], "stratum": ["Q1"] * 4, "p_value": [0.01, 0.04, 0.03, 0.04]})
    out = paired_tests.holm_families(tests, ["dataset", "stratum"], alpha=0.05)
    assert out["p_holm"].tolist() == pytest.approx([0.03, 0.06, 0.06, 0.04])
    assert out["significant"].tolist() == [True, False, False, True]
    assert out["family"].tolist() == ["dataset=a;stratum=Q1"] * 3 + ["dataset=b;stratum=Q1"]
    assert out["family_size"].tolist() == [3, 3, 3, 1]


def test_weighted_medians_equal_numpy_median_of_the_resampled_cases():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(3, 7))
    values[1, :3] = 0.25  # ties
    weights = bootstrap.weight_matrix(7, 200, rng)
    weights[0] = 0  # a resample drawing no case: no median
    weights[1] = [0, 2, 0, 0, 0, 0, 0]  # even count, one distinct value
    got = paired_tests.weighted_medians(values, weights)
    assert got.shape == (200, 3) and np.isnan(got[0]).all()
    for b in range(1, 200):
        for g in range(3):
            assert got[b, g] == pytest.approx(np.median(np.repeat(values[g], weights[b].astype(int))))


def test_vectorized_wilcoxon_equals_scipy_vector_by_vector():
    rng = np.random.default_rng(11)
    vectors = [np.zeros(5), np.zeros(20), np.array([0.0]), np.array([0.3]), np.array([1.0, -1.0])]
    for n in (2, 3, 5, 6, 8, 9, 14, 20, 60):
        for decimals in (0, 1, 6):  # many ties and zeros .. none
            vectors.append(np.round(rng.normal(0.3, 1.0, n), decimals))
    got = paired_tests.wilcoxon_tests(vectors)
    for i, d in enumerate(vectors):
        if not np.count_nonzero(d):
            assert (got["p_value"][i], got["statistic"][i]) == (1.0, 0.0)  # no evidence either way
            continue
        ref = wilcoxon(d)
        assert got["p_value"][i] == pytest.approx(ref.pvalue, rel=1e-12, abs=1e-15), d
        assert got["statistic"][i] == ref.statistic
        assert got["rank_sum_a"][i] == wilcoxon(d, alternative="greater").statistic
        assert got["rank_sum_a"][i] + got["rank_sum_b"][i] == got["n_nonzero"][i] * (got["n_nonzero"][i] + 1) / 2


def _study():
    data = study_tables.make_dataset("toy", n_cases=25, models=("a", "b", "c"), seed=4)
    tables = study_tables.to_tables(data)
    return tables, strata.case_sums(tables)


def test_wilcoxon_p_values_equal_scipy_on_the_per_case_vectors():
    tables, sums = _study()
    w = bootstrap.weight_matrix(sums.n_cases, 300, np.random.default_rng(1))
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    paired = key_indices(PAIRED_SETS)
    df = paired_tests.pairwise_tests(
        "toy",
        sums.models,
        [KEYS[k] for k in paired],
        sums.num.mean(axis=1)[:, :, paired],
        sums.den[0, 0][:, paired],
        w,
        0.95,
        HIGHER_IS_BETTER,
        pairs,
    )
    df = df[df.lesion_set == "all"]
    # independent path: per-case lesion means straight from the per-lesion rows
    ref = tables.per_lesion[tables.per_lesion.kind == "reference"].copy()
    size = dict(zip(zip(tables.reference.case_id, tables.reference.lesion_id), tables.reference.size_fraction))
    e = tables.edges
    ref["q"] = strata.assign_quartile([size[p] for p in zip(ref.case_id, ref.lesion_id)], e["q25"], e["q50"], e["q75"])
    checked = 0
    for stratum, metric in (
        ("overall", "dice"),
        ("overall", "hd95"),
        ("Q1", "hd95"),
        ("Q2", "contour_f1"),
        ("Q1", "lesion_recall"),
    ):
        if stratum == "overall":
            pc = tables.per_case.set_index(["model", "case_id"])[metric]
            vec = {m: pc.loc[m].reindex(sums.case_ids).to_numpy(float) for m in sums.models}
            left_out = 0
        else:
            q = ref[ref.q == QUARTILES.index(stratum)].copy()
            col = "detected" if metric == "lesion_recall" else metric
            q[col] = q[col].astype(float)
            means = q.groupby(["model", "case_id"])[col].mean()
            cases = sorted(set(q.case_id))
            vec = {m: means.loc[m].reindex(cases).to_numpy(float) for m in sums.models}
            left_out = sums.n_cases - len(cases)
        for a, b in pairs:
            r = df[(df.stratum == stratum) & (df.metric == metric) & (df.pair_first == a) & (df.pair_second == b)].iloc[
                0
            ]
            ref_test = wilcoxon(vec[a], vec[b])
            assert r.p_value == pytest.approx(ref_test.pvalue, rel=1e-12)
            assert r.statistic == pytest.approx(ref_test.statistic)
            assert r.median_difference == pytest.approx(np.median(vec[a] - vec[b]))
            assert r.n_cases == len(vec[a]) and r.n_cases_left_out == left_out
            assert r.ci_low <= r.median_difference <= r.ci_high
            checked += 1
    q1 = df[df.stratum == "Q1"]
    assert checked == 15 and (q1[q1.metric != "fp_per_case"].n_cases_left_out > 0).all()
    assert (q1[q1.metric == "fp_per_case"].n_cases_left_out == 0).all()  # counted per case, every case


def test_direction_and_constant_differences():
    # b is better than a under HD95 on every case (lower distances); a test of identical vectors gives p = 1
    a = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    num = np.stack([a, a - 1.5, a])[:, :, None]  # models x cases x one key
    den = np.ones((6, 1))
    w = bootstrap.weight_matrix(6, 100, np.random.default_rng(0))
    df = paired_tests.pairwise_tests(
        "d", ["a", "b", "c"], [("all", "overall", "hd95")], num, den, w, 0.9, HIGHER_IS_BETTER, [("a", "b"), ("a", "c")]
    )
    ab, ac = df.iloc[0], df.iloc[1]
    assert ab.better_model == "b" and ab.median_difference == 1.5 and ab.ci_low == ab.ci_high == 1.5
    assert ab.p_value == pytest.approx(wilcoxon(a, a - 1.5).pvalue) == pytest.approx(2 / 64)
    assert (ab.rank_sum_a, ab.rank_sum_b) == (21.0, 0.0)
    assert ac.better_model == "tie" and ac.p_value == 1.0 and ac.n_nonzero == 0 and ac.median_difference == 0.0


def test_rank_then_aggregate_with_ties():
    # 3 models x 4 cases, higher is better; ties share the average rank
    values = np.array([[0.9, 0.5, 0.7, 0.7], [0.9, 0.6, 0.7, 0.2], [0.1, 0.6, 0.8, 0.9]])
    # case ranks: c1 1.5 1.5 3 | c2 3 1.5 1.5 | c3 2.5 2.5 1 | c4 2 3 1
    got = schemes.mean_case_ranks(values, higher_is_better=True)
    assert got == pytest.approx([(1.5 + 3 + 2.5 + 2) / 4, (1.5 + 1.5 + 2.5 + 3) / 4, (3 + 1.5 + 1 + 1) / 4])
    # lower is better: the ranks reverse
    assert schemes.mean_case_ranks(values, higher_is_better=False) == pytest.approx(4 - got)


def test_three_schemes_and_their_agreement():
    aggregate = {"a": 0.80, "b": 0.70, "c": 0.75}  # aggregate order a > c > b
    values = np.array([[0.9, 0.9, 0.1], [0.5, 0.6, 0.6], [0.7, 0.7, 0.8]])  # mean ranks a 5/3, b 8/3, c 5/3
    tests = pd.DataFrame({"better_model": ["b", "a", "c"], "significant": [True, False, True]})
    rows = pd.DataFrame(
        schemes.scheme_rows("d", "common", "Q1", "dice", True, aggregate, values, ["a", "b", "c"], tests)
    )
    r = rows.set_index("model")
    assert r.rank_aggregate_then_rank.to_dict() == {"a": 1, "c": 2, "b": 3}
    # a and c tie on mean rank 5/3: broken by the aggregate order (a first)
    assert r.mean_case_rank.to_dict() == pytest.approx({"a": 5 / 3, "b": 8 / 3, "c": 5 / 3})
    assert r.rank_rank_then_aggregate.to_dict() == {"a": 1, "c": 2, "b": 3}
    # wins: b 1, c 1, a 0 -> c (aggregate 2nd) before b (3rd), then a
    assert r.significant_wins.to_dict() == {"a": 0, "b": 1, "c": 1}
    assert r.rank_test_then_rank.to_dict() == {"c": 1, "b": 2, "a": 3}
    assert (rows["tau_aggregate_then_rank_vs_rank_then_aggregate"] == 1.0).all()
    # a c b vs c b a: pairs (a,c) discordant, (a,b) discordant, (c,b) concordant -> tau = (1 - 2) / 3
    assert rows["tau_aggregate_then_rank_vs_test_then_rank"].iloc[0] == pytest.approx(-1 / 3)


def _stability(num, den, resamples=500):
    w = bootstrap.weight_matrix(num.shape[1], resamples, np.random.default_rng(7))
    num4 = num[:, None]  # one seed
    den4 = np.broadcast_to(den, num4.shape)
    samples = bootstrap.ratio_statistics(num4, den4, w)
    observed = strata.point_statistics(num, den)
    return stability.stability_rows(
        "d",
        ["a", "b", "c"],
        [("all", "overall", "dice"), ("common", "Q1", "hd95")],
        observed,
        samples,
        HIGHER_IS_BETTER,
    )


def test_model_better_on_every_case_holds_rank_one_in_every_resample():
    rng = np.random.default_rng(2)
    base = rng.uniform(0.3, 0.6, size=(3, 30, 2))  # b and c noisy, a better on every case
    base[0, :, 0] = base[1:, :, 0].max(axis=0) + 0.01  # dice: higher is better
    base[0, :, 1] = base[1:, :, 1].min(axis=0) - 0.01  # hd95: lower is better
    den = np.ones((30, 2))
    df = _stability(base, den)
    for metric in ("dice", "hd95"):
        a = df[(df.metric == metric) & (df.model == "a")].set_index("rank")["share"]
        assert a.to_dict() == {1: 1.0, 2: 0.0, 3: 0.0}
        assert df[(df.metric == metric) & (df.model == "a")].observed_rank.iloc[0] == 1
        per_rank = df[df.metric == metric].groupby("rank")["share"].sum()
        assert per_rank.to_numpy() == pytest.approx([1.0, 1.0, 1.0])


def test_identical_models_split_the_ranks():
    rng = np.random.default_rng(4)
    a = rng.uniform(0.5, 0.9, size=(20, 2))
    num = np.stack([a, a, a - 0.2])  # a and b identical, c worse
    num[2, :, 1] = a[:, 1] + 0.2  # hd95: c larger = worse
    df = _stability(num, np.ones((20, 2)))
    for metric in ("dice", "hd95"):
        for model in ("a", "b"):
            s = df[(df.metric == metric) & (df.model == model)].set_index("rank")["share"]
            assert s.to_dict() == {1: 0.5, 2: 0.5, 3: 0.0}
        obs = df[(df.metric == metric) & (df["rank"] == 1)].set_index("model").observed_rank.to_dict()
        assert obs == {"a": 1, "b": 2, "c": 3}  # observed tie broken by name


def test_resamples_without_lesions_are_left_out():
    num = np.array([[[1.0], [0.0], [0.0]], [[0.0], [0.0], [0.0]], [[0.5], [0.0], [0.0]]])
    den = np.array([[1.0], [0.0], [0.0]])  # only case 0 has a lesion of the stratum
    w = bootstrap.weight_matrix(3, 400, np.random.default_rng(0))
    shares, n_valid = stability.rank_shares(
        bootstrap.ratio_statistics(num[:, None], np.broadcast_to(den, (3, 1, 3, 1)), w), [True]
    )
    assert n_valid[0] == int((w[:, 0] > 0).sum()) < 400
    assert shares[:, 0, 0] == pytest.approx([1.0, 0.0, 0.0])


def test_comparison_tables_from_files(tmp_path):
    from lesionbench.stats import comparisons, pipeline

    paths = {"per_case": [], "per_lesion": [], "split": [], "lesions": [], "quartiles": []}
    for i, name in enumerate(("alpha", "beta")):
        written = study_tables.write_dataset(
            study_tables.make_dataset(name, n_cases=10, models=("a", "b", "c"), seed=i), tmp_path
        )
        for k in paths:
            paths[k] += written[k]
    inputs = pipeline.StudyInputs(
        paths["per_case"], paths["per_lesion"], paths["split"], paths["lesions"], paths["quartiles"]
    )
    out = [tmp_path / f"{n}.csv" for n in ("pairwise", "schemes", "stability")]
    res = comparisons.write_comparisons(
        inputs,
        *out,
        {"bootstrap_resamples": 80, "bootstrap_seed": 3, "confidence": 0.9, "test_alpha": 0.2},
        {"min_lesions": 5},
    )
    tests, sch, stab = (pd.read_csv(p) for p in out)
    assert len(tests) == len(res.pairwise) and not tests.isna().any().any()
    assert set(tests.dataset) == {"alpha", "beta", "pooled"} and set(tests.lesion_set) == {"all", "common"}
    # a family: every pair and metric of one data set, lesion set and stratum
    fam = tests[(tests.dataset == "alpha") & (tests.lesion_set == "all") & (tests.stratum == "overall")]
    assert (fam.family == "dataset=alpha;lesion_set=all;stratum=overall").all()
    assert (fam.family_size == 3 * 8).all() and len(fam) == 24
    assert fam.p_holm.to_numpy() == pytest.approx(paired_tests.holm(fam.p_value))
    assert ((tests.p_holm < 0.2) == tests.significant).all() and (tests.alpha == 0.2).all()
    assert (tests.size_bins == "test_quartiles").all() and (tests.n_resamples == 80).all()
    # test-then-rank counts the significant wins of the pairwise table
    for (ds, ls, st, me), g in sch.groupby(["dataset", "lesion_set", "stratum", "metric"]):
        t = tests[(tests.dataset == ds) & (tests.lesion_set == ls) & (tests.stratum == st) & (tests.metric == me)]
        wins = t[t.significant].better_model.value_counts()
        assert g.set_index("model").significant_wins.to_dict() == {m: int(wins.get(m, 0)) for m in g.model}
        assert sorted(g.rank_test_then_rank) == [1, 2, 3]
    # rank shares: per model and per rank they sum to 1; the pooled resamples keep every data set's cases
    s = stab.groupby(["dataset", "lesion_set", "stratum", "metric", "model"]).share.sum()
    assert s.to_numpy() == pytest.approx(1.0)
    assert (stab[stab.dataset == "pooled"].n_resamples == 80).all()
    flagged = tests[tests.insufficient_lesions]
    assert (flagged.n_lesions < 5).all() and not flagged.empty


def test_recall_per_merged_lesion_in_the_overall_table(tmp_path):
    from lesionbench.stats import merged, pipeline

    # case c1: lesions 1 and 2 merged (BraTS), lesion 3 alone; case c2: one lesion. Model m detects the
    # merged lesion only through lesion 1's row flag shared by lesion 2; n detects lesion 3 and c2's lesion.
    lesions = [("c1", 1, 0.001), ("c1", 2, 0.002), ("c1", 3, 0.003), ("c2", 1, 0.004)]
    rows = {
        ("m", 0): [
            {"case_id": "c1", "kind": "reference", "lesion_id": 1, "merged_lesion_id": 1, "detected": True},
            {"case_id": "c1", "kind": "reference", "lesion_id": 2, "merged_lesion_id": 1, "detected": True},
            {"case_id": "c1", "kind": "reference", "lesion_id": 3, "merged_lesion_id": 2},
            {"case_id": "c2", "kind": "reference", "lesion_id": 1, "merged_lesion_id": 1},
        ],
        ("n", 0): [
            {"case_id": "c1", "kind": "reference", "lesion_id": 1, "merged_lesion_id": 1},
            {"case_id": "c1", "kind": "reference", "lesion_id": 2, "merged_lesion_id": 1},
            {"case_id": "c1", "kind": "reference", "lesion_id": 3, "merged_lesion_id": 2, "detected": True},
            {"case_id": "c2", "kind": "reference", "lesion_id": 1, "merged_lesion_id": 1, "detected": True},
        ],
    }
    data = study_tables.dataset_from_rows("hand", ["c1", "c2"], lesions, {("m", 0): {}, ("n", 0): {}}, rows)
    paths = study_tables.write_dataset(data, tmp_path)
    inputs = pipeline.StudyInputs(
        paths["per_case"], paths["per_lesion"], paths["split"], paths["lesions"], paths["quartiles"]
    )
    df = pipeline.write_overall_metrics(
        inputs, tmp_path / "overall.csv", {"bootstrap_resamples": 50, "bootstrap_seed": 1, "confidence": 0.9}
    )
    v = df.set_index(["model", "metric"])
    # per component: m 2/4, n 2/4; per merged lesion (3 merged lesions): m 1/3, n 2/3
    assert v.loc[("m", "lesion_recall"), "value"] == v.loc[("n", "lesion_recall"), "value"] == 0.5
    assert v.loc[("m", "lesion_recall_merged"), "value"] == pytest.approx(1 / 3)
    assert v.loc[("n", "lesion_recall_merged"), "value"] == pytest.approx(2 / 3)
    assert v.loc[("m", "lesion_recall_merged"), "n_lesions"] == 3 and v.loc[("m", "lesion_recall"), "n_lesions"] == 4
    assert v.loc[("n", "lesion_recall_merged"), "ci_low"] <= 2 / 3 <= v.loc[("n", "lesion_recall_merged"), "ci_high"]
    assert not df.isna().any().any()
    # a table whose merging differs (another dilation radius) is an error naming it
    rows[("n", 0)][1]["merged_lesion_id"] = 3
    data = study_tables.dataset_from_rows("hand", ["c1", "c2"], lesions, {("m", 0): {}, ("n", 0): {}}, rows)
    with pytest.raises(Exception, match="merged lesions of case 'c1' differ"):
        merged.merged_recall_sums(study_tables.to_tables(data))
