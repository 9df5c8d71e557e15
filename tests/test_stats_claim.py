"""The verdict on the five expected findings: every state of every finding, on summaries made by hand and
per-case sums drawn from one per-lesion error law (``verdict_simulation``: exchangeable models, or a planted
small-lesion boundary effect with Dice tied)."""

import numpy as np
import pandas as pd
import pytest

from lesionbench.stats import claim, verdict_simulation
from lesionbench.stats.sanity import CHECKS
from lesionbench.stats.strata import pool
from lesionbench.stats.summary import SUMMARY_COLUMNS

SETTINGS = {
    "min_lesions": 10,
    "dice_tie": 0.01,
    "seed_sd_factor": 2.0,
    "min_boundary_spread_pct": 10.0,
    "separation_ratio": 2.0,
    "alpha": 0.05,
    "permutations": 199,
    "permutation_seed": 11,
    "resolution_floor_voxels": 0.5,
}
MODELS = ("model_0", "model_1", "model_2", "model_3")
TOP = " > ".join(MODELS)


def summary(
    dice_spread=0.005,
    n_seeds=1,
    dice_seed_sd=0.0,
    overall_hd95=10.0,
    q1_hd95=40.0,
    q1_asd=5.0,
    q1_n=20,
    q4_n=20,
    q1_agree=(True, True, True),
    q1_tau=-1 / 3,
    q4_tau=1.0,
    dataset="sim",
):
    base = {c: None for c in SUMMARY_COLUMNS}
    rows = []
    for setting, lesion_set, n, agree, tau, hd95, asd in (
        ("all_cases", "all", 100, (True, True, True), 1.0, overall_hd95, 5.0),
        ("Q1", "common", q1_n, q1_agree, q1_tau, q1_hd95, q1_asd),
        ("Q4", "common", q4_n, (True, True, True), q4_tau, 3.0, 3.0),
    ):
        rows.append(
            {
                **base,
                "dataset": dataset,
                "setting": setting,
                "lesion_set": lesion_set,
                "top_models": TOP,
                "n_models": len(MODELS),
                "n_seeds": n_seeds,
                "n_lesions": n,
                "insufficient_lesions": n < 10,
                "dice_spread": dice_spread,
                "dice_seed_sd": dice_seed_sd,
                "hd95_spread_pct": hd95,
                "asd_spread_pct": asd,
                "contour_f1_spread": 0.1,
                "recall_spread_pp": 5.0,
                "hd95_agrees_with_dice": agree[0],
                "asd_agrees_with_dice": agree[1],
                "contour_f1_agrees_with_dice": agree[2],
                "mean_kendall_tau": tau,
                "dice_leader_hd95_rank": 1 if agree[0] else 3,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def sanity(failed=(), warned=(), dataset="sim"):
    return pd.DataFrame(
        [
            {
                "dataset": dataset,
                "check": c,
                "status": "fail" if c in failed else "warn" if c in warned else "pass",
                "figures": "",
            }
            for c in CHECKS
        ]
    )


def planted(n_q1=60, effect_pct=300.0, seed=0, dataset="sim"):
    """Per-case sums with models 0 and 1 worse on Q1 boundaries by ``effect_pct`` % (Dice tied)."""
    rng = np.random.default_rng(seed)
    return verdict_simulation.simulated_sums(rng, n_q1, effect_pct=effect_pct, dataset=dataset)


def null(n_q1=60, seed=0, dataset="sim"):
    return planted(n_q1, 0.0, seed, dataset)


def verdicts(sums=None, s=None, san=None, floor=0.5, **settings):
    sums = planted() if sums is None else sums
    out = claim.claim_check(
        summary() if s is None else s,
        sanity() if san is None else san,
        {"sim": sums},
        {**SETTINGS, **settings},
        {"sim": floor},
    )
    assert list(out.columns) == claim.CLAIM_COLUMNS
    assert set(out.verdict) <= set(claim.VERDICTS)
    return out.set_index("finding")


@pytest.fixture
def needs_40(monkeypatch):
    """The calibration's answer fixed at 40 common Q1 lesions for every finding."""
    monkeypatch.setattr(claim, "lesions_needed", lambda finding: 40)


def test_a_planted_small_lesion_effect_is_supported_with_p_value_and_criteria_written():
    v = verdicts()
    assert v.loc["dice_tie", "verdict"] == "supported"
    assert v.loc["q1_boundary_separation", "verdict"] == "supported"
    assert v.loc["ranking_change", "verdict"] == "supported"
    assert v.loc["smallest_quartile_strongest", "verdict"] == "supported"
    assert v.loc["q1_boundary_separation", "p_value"] <= 0.05
    assert np.isnan(v.loc["dice_tie", "p_value"])  # a bound, not a test
    assert (v.alpha == 0.05).all()
    assert v.loc["dice_tie", "criterion"] == "all-cases Dice spread of the top models <= 0.01 (one seed)"
    assert "best-vs-worst >= 0.5 mm" in v.loc["q1_boundary_separation", "criterion"]
    assert "Monte Carlo, 199 relabellings" in v.loc["q1_boundary_separation", "observed"]
    assert f"top 4 of the 4 models of this run by overall Dice: {TOP}" == v.loc["dice_tie", "models"]


def test_exchangeable_models_support_no_boundary_finding():
    v = verdicts(null(seed=3))
    assert not (v.drop(index="dice_tie").verdict == "supported").any(), v[["verdict", "reason"]]


def test_dice_tie_states():
    assert verdicts(s=summary(dice_spread=0.05)).loc["dice_tie", "verdict"] == "not_supported"
    # several seeds: a 0.03 spread within 2 x seed SD 0.02 is a tie; with one seed it is not
    assert verdicts(s=summary(dice_spread=0.03, n_seeds=3, dice_seed_sd=0.02)).loc["dice_tie", "verdict"] == "supported"
    noisy = summary(dice_spread=0.03, n_seeds=3, dice_seed_sd=0.01)
    assert verdicts(s=noisy).loc["dice_tie", "verdict"] == "not_supported"
    v = verdicts(san=sanity(failed=("metric_code",)))
    assert v.loc["dice_tie", "verdict"] == "inconclusive"
    assert "failed sanity check(s): metric_code (verdict would be supported)" in v.loc["dice_tie", "reason"]


def test_not_tied_under_dice_makes_the_separation_inconclusive():
    v = verdicts(s=summary(dice_spread=0.05))
    assert v.loc["q1_boundary_separation", "verdict"] == "inconclusive"
    assert "not tied under Dice (verdict would be supported)" in v.loc["q1_boundary_separation", "reason"]


def test_a_difference_below_the_resolution_floor_is_no_separation():
    """The planted 40 % is 0.8-0.9 mm at these HD95 values: above a 0.5 mm floor, below a 2 mm one."""
    sums = planted(n_q1=80, effect_pct=40.0, seed=2)
    assert verdicts(sums, floor=0.5).loc["q1_boundary_separation", "verdict"] == "supported"
    v = verdicts(sums, floor=2.0)
    assert v.loc["q1_boundary_separation", "verdict"] == "not_supported"
    assert v.loc["q1_boundary_separation", "reason"] == claim.NO_EFFECT["q1_boundary_separation"]
    assert "best-vs-worst >= 2 mm" in v.loc["q1_boundary_separation", "criterion"]


def test_too_few_lesions_say_how_many_would_decide(needs_40):
    v = verdicts(planted(n_q1=6))
    row = v.loc["q1_boundary_separation"]
    assert row.verdict == "inconclusive"
    assert row.reason.startswith("too few common lesions in Q1 (< 10); about 40 common Q1 lesions would decide it")
    assert row.lesions_needed == 40 and np.isnan(row.p_value)


def test_an_effect_short_of_significance_is_inconclusive_below_the_needed_lesions_else_not_supported(needs_40):
    sums = planted(n_q1=20, effect_pct=15.0, seed=5)  # a faint effect: spread seen, not significant
    v = verdicts(sums, floor=0.0, permutations=99)
    row = v.loc["q1_boundary_separation"]
    assert row.verdict == "inconclusive" and row.p_value > 0.05, row.to_dict()
    assert "not significant (adjusted p" in row.reason and row.lesions_needed == 40
    assert claim.decide("ranking_change", 2.0, 0.4, 60, 0.05)[0] == "not_supported"
    assert claim.decide("ranking_change", 2.0, 0.4, 20, 0.05)[:1] == ("inconclusive",)
    assert claim.decide("ranking_change", 0.0, 0.01, 20, 0.05)[0] == "not_supported"  # no effect at all


def test_dependent_findings_need_their_base():
    assert claim.gate(
        {
            "q1_boundary_separation": "inconclusive",
            "ranking_change": "supported",
            "smallest_quartile_strongest": "supported",
            "large_lesions_align": "supported",
        }
    ) == {
        "q1_boundary_separation": "inconclusive",
        "ranking_change": "supported",
        "smallest_quartile_strongest": "inconclusive",
        "large_lesions_align": "supported",
    }


def test_holm_runs_over_data_sets_and_joins_separation_and_ranking():
    raw = {
        ("a", "q1_boundary_separation"): 0.01,
        ("b", "q1_boundary_separation"): 0.04,
        ("a", "ranking_change"): 0.03,
        ("b", "ranking_change"): 0.5,
        ("a", "large_lesions_align"): 0.03,
    }
    adj = claim.holm_adjust(raw)
    # family of four: 0.01 x 4, then max(0.04, 0.03 x 3 = 0.09), 0.04 x 2, 0.5
    assert adj[("a", "q1_boundary_separation")] == pytest.approx(0.04)
    assert adj[("a", "ranking_change")] == pytest.approx(0.09)
    assert adj[("b", "q1_boundary_separation")] == pytest.approx(0.09)
    assert adj[("b", "ranking_change")] == pytest.approx(0.5)
    assert adj[("a", "large_lesions_align")] == pytest.approx(0.03)  # its own family of one


def test_warnings_are_named_and_pooled_uses_every_data_set():
    a, b = planted(dataset="d1"), planted(seed=1, dataset="d2")
    sums = {"d1": a, "d2": b, "pooled": pool([a, b])}
    s = pd.concat([summary(dataset=d) for d in sums], ignore_index=True)
    san = pd.concat([sanity(dataset="d1", warned=("small_lesions",)), sanity(dataset="d2", failed=("quartiles",))])
    out = claim.claim_check(s, san, sums, SETTINGS, {d: 0.5 for d in sums})
    d1 = out[out.dataset == "d1"].set_index("finding")
    assert d1.loc["q1_boundary_separation", "verdict"] == "supported"
    assert "warning: small_lesions" in d1.loc["q1_boundary_separation", "reason"]
    pooled = out[out.dataset == "pooled"].set_index("finding")
    assert pooled.loc["dice_tie", "verdict"] == "supported"  # does not depend on quartiles
    assert pooled.loc["q1_boundary_separation", "verdict"] == "inconclusive"
    assert "quartiles (d2) (verdict would be supported)" in pooled.loc["q1_boundary_separation", "reason"]
    assert out.dataset.tolist()[-1] == "pooled"


def test_missing_sums_or_floor_is_an_error():
    with pytest.raises(ValueError, match=r"no per-case sums or resolution floor for data set\(s\) \['sim'\]"):
        claim.claim_check(summary(), sanity(), {}, SETTINGS, {})
