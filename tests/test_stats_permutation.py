"""The verdict's permutation tests: relabellings, p-values against full enumeration, the statistics on
hand-made values, and the false-positive rate of the decision rule on seeded null studies."""

import itertools

import numpy as np
import pytest
from scipy.stats import binomtest

from lesionbench.stats import claim, claim_statistics, verdict_simulation
from lesionbench.stats.permutation import (
    LabelData,
    n_relabellings,
    permutation_pvalue,
    permutation_tests,
    relabellings,
)
from lesionbench.stats.strata import COMMON

SETTINGS = {
    "min_lesions": 10,
    "min_boundary_spread_pct": 10.0,
    "separation_ratio": 2.0,
    "alpha": 0.05,
    "permutations": 99,
    "permutation_seed": 5,
}


def spread(x, den):
    """max - min over models of the ratio-of-sums mean of key 0."""
    means = x[..., 0].sum(axis=1) / den[:, 0].sum()
    return means.max(axis=1) - means.min(axis=1)


TINY = LabelData(
    x=np.array([[[3.0], [1.0], [2.0]], [[0.0], [2.0], [4.0]], [[1.0], [1.0], [0.5]]]),  # 3 models x 3 cases
    den=np.array([[2.0], [1.0], [2.0]]),
    keys=(("common", "Q1", "hd95"),),
    models=("a", "b", "c"),
)


def brute_force_pvalue(data: LabelData) -> float:
    """Every relabelling written out as loops: model m of case c gets model perm_c[m]'s sums."""
    k, n_cases = data.x.shape[0], data.x.shape[1]
    total = data.den[:, 0].sum()

    def stat(perms):
        means = [sum(data.x[perm[m], c, 0] for c, perm in enumerate(perms)) / total for m in range(k)]
        return max(means) - min(means)

    observed = stat([tuple(range(k))] * n_cases)
    all_perms = list(itertools.product(itertools.permutations(range(k)), repeat=n_cases))
    return sum(stat(p) >= observed - 1e-12 for p in all_perms) / len(all_perms)


def test_relabellings_enumerate_every_one_when_few_else_draw_seeded():
    index, exact = relabellings(3, 3, 216, np.random.default_rng(0))
    assert exact and index.shape == (216, 3, 3) == (n_relabellings(3, 3), 3, 3)
    assert len({tuple(r.ravel()) for r in index}) == 216
    drawn, exact = relabellings(3, 3, 100, np.random.default_rng(0))
    assert not exact and drawn.shape == (100, 3, 3)
    assert (np.sort(drawn, axis=-1) == np.arange(3)).all()  # each row of a case is a permutation
    again, _ = relabellings(3, 3, 100, np.random.default_rng(0))
    assert (drawn == again).all()


def test_exact_pvalue_equals_full_enumeration_and_monte_carlo_approaches_it():
    expected = brute_force_pvalue(TINY)
    result = permutation_tests(TINY, {"spread": spread}, 216, np.random.default_rng(0))["spread"]
    assert result.exact and result.n_permutations == 216
    assert result.p_value == pytest.approx(expected)
    # two models, five cases: 32 relabellings, still exact, against Monte Carlo with 4000 draws
    two = LabelData(TINY.x[:2].repeat(2, axis=1)[:, :5], TINY.den.repeat(2, axis=0)[:5], TINY.keys, ("a", "b"))
    exact = permutation_tests(two, {"spread": spread}, 32, np.random.default_rng(0))["spread"]
    assert exact.exact and exact.p_value == pytest.approx(brute_force_pvalue(two))
    mc = permutation_tests(two, {"spread": spread}, 31, np.random.default_rng(2))["spread"]
    assert not mc.exact and mc.n_permutations == 31
    se = np.sqrt(exact.p_value * (1 - exact.p_value) / 31)
    assert abs(mc.p_value - exact.p_value) <= 4 * se + 1 / 32


def test_tiny_case_values():
    """Observed means of TINY: a (3+1+2)/5 = 1.2, b (0+2+4)/5 = 1.2, c (1+1+0.5)/5 = 0.5: spread 0.7."""
    result = permutation_tests(TINY, {"spread": spread}, 216, np.random.default_rng(0))["spread"]
    assert result.observed == pytest.approx(0.7)


def test_monte_carlo_pvalue_counts_the_observed_labelling():
    null = np.array([0.1, 0.5, 0.7, 0.2])
    assert permutation_pvalue(0.5, null, exact=False) == pytest.approx(3 / 5)  # (2 + 1) / (4 + 1)
    assert permutation_pvalue(0.5, null, exact=True) == pytest.approx(2 / 4)
    assert permutation_pvalue(np.inf, np.array([np.inf, 1.0]), exact=False) == pytest.approx(2 / 3)


def _means_data(q1_hd95, overall_hd95, dice=(0.8, 0.8, 0.8)):
    """Two identical cases of 5 common Q1 lesions each, whose mean HD95 per model is ``q1_hd95``; overall
    HD95 and Dice per case as given (other keys 1). Returns (x (1, 2, k, keys), den (2, keys))."""
    k = len(q1_hd95)
    x = np.ones((1, 2, k, len(claim_statistics.STAT_KEYS)))
    den = np.ones((2, len(claim_statistics.STAT_KEYS)))
    col = claim_statistics.COLUMN
    den[:, col[(COMMON, "Q1", "hd95")]] = 5
    x[0, :, :, col[(COMMON, "Q1", "hd95")]] = np.array(q1_hd95) * 5
    x[0, :, :, col[("all", "overall", "hd95")]] = overall_hd95
    x[0, :, :, col[("all", "overall", "dice")]] = dice
    return x, den


def test_separation_statistic_applies_spread_ratio_and_floor():
    x, den = _means_data([1.0, 1.2, 1.5], [10.0, 10.5, 11.0])  # Q1 50 %, all cases 10 %
    assert claim_statistics.separation(10.0, 2.0, 0.5)(x, den)[0] == pytest.approx(50.0)
    assert claim_statistics.separation(10.0, 2.0, 0.6)(x, den)[0] == 0.0  # 0.5 mm < 0.6 mm floor
    assert claim_statistics.separation(60.0, 2.0, 0.0)(x, den)[0] == 0.0  # below 60 %
    assert claim_statistics.separation(10.0, 6.0, 0.0)(x, den)[0] == 0.0  # 50 % < 6 x 10 %


def test_reversal_statistic_needs_a_dice_order_and_the_floor():
    x, den = _means_data([2.0, 1.0, 1.0], [1, 1, 1], dice=(0.9, 0.8, 0.7))  # Dice leader worst under HD95
    z = claim_statistics.reversal(0.5)(x, den)
    assert np.isposinf(z[0])  # identical cases: no case-to-case variance, an exact reversal of 1 mm
    assert claim_statistics.reversal(1.5)(x, den)[0] == 0.0  # 1 mm < 1.5 mm floor
    tied = _means_data([2.0, 1.0, 1.0], [1, 1, 1], dice=(0.8, 0.8, 0.8))
    assert claim_statistics.reversal(0.5)(*tied)[0] == 0.0  # no Dice order, nothing to reverse


def test_false_positive_rate_of_the_decision_rule_on_null_studies():
    """200 seeded studies of exchangeable models (each one data set): the share with any boundary finding
    supported is not significantly above alpha (the lower end of its 95 % interval is at most alpha)."""
    hits = 0
    settings = {**SETTINGS, "permutations": 49}
    for seed in range(200):
        sums = verdict_simulation.simulated_sums(np.random.default_rng(10_000 + seed), 30)
        verdicts = claim.boundary_verdicts({"sim": sums}, settings, {"sim": 0.5})
        hits += any(v == "supported" for v in verdicts.values())
    interval = binomtest(hits, 200).proportion_ci(0.95)
    assert interval.low <= SETTINGS["alpha"], hits


def test_planted_effect_has_power():
    hits = 0
    for seed in range(20):
        sums = verdict_simulation.simulated_sums(np.random.default_rng(seed), 60, effect_pct=100.0)
        hits += claim.boundary_verdicts({"sim": sums}, SETTINGS, {"sim": 0.5})[("sim", "q1_boundary_separation")] == (
            "supported"
        )
    assert hits >= 18
