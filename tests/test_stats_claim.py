"""The verdict on the five expected findings: every state of every finding on hand-made tables."""

import pandas as pd

from lesionbench.stats import claim
from lesionbench.stats.sanity import CHECKS
from lesionbench.stats.summary import SUMMARY_COLUMNS

SETTINGS = {
    "min_lesions": 10,
    "dice_tie": 0.01,
    "seed_sd_factor": 2.0,
    "min_boundary_spread_pct": 10.0,
    "separation_ratio": 2.0,
    "min_sign_share": 0.975,
}
TOP = "a > b > c"


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
    dataset="d1",
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
                "n_models": 4,
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


def stratified(q_spreads=(50.0, 20.0, 10.0, 5.0), counts=(20, 20, 20, 20), dataset="d1"):
    """Common-set HD95 and ASD values of a, b, c whose relative spread is the given % per quartile."""
    rows = []
    for q, spread, n in zip(("Q1", "Q2", "Q3", "Q4"), q_spreads, counts):
        for metric in ("dice", "hd95", "asd"):
            for model, v in zip("abc", (1.0, 1.0 + spread / 200, 1.0 + spread / 100)):
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "lesion_set": "common",
                        "quartile": q,
                        "metric": metric,
                        "value": v,
                        "n_lesions": n,
                    }
                )
    return pd.DataFrame(rows)


def robustness(sign_share=0.99, dataset="d1", separation_share=0.99):
    """A robust Q1 reversal of a and b under HD95, and the best-vs-worst pair (a, c) of the separation."""
    rows = [
        {
            "dataset": dataset,
            "lesion_set": "common",
            "stratum": "Q1",
            "metric": "hd95",
            "pair_first": "a",
            "pair_second": "b",
            "better_model": "b",
            "sign_share": sign_share,
        }
    ]
    rows += [
        {
            "dataset": dataset,
            "lesion_set": "common",
            "stratum": "Q1",
            "metric": m,
            "pair_first": "a",
            "pair_second": "c",
            "better_model": "a",
            "sign_share": separation_share,
        }
        for m in ("hd95", "asd")
    ]
    return pd.DataFrame(rows)


def sanity(failed=(), warned=(), dataset="d1"):
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


def verdicts(s=None, st=None, rob=None, san=None, **settings):
    out = claim.claim_check(
        summary() if s is None else s,
        stratified() if st is None else st,
        robustness() if rob is None else rob,
        sanity() if san is None else san,
        {**SETTINGS, **settings},
    )
    assert list(out.columns) == claim.CLAIM_COLUMNS
    assert set(out.verdict) <= set(claim.VERDICTS)
    return out.set_index("finding")


def test_all_supported_with_criteria_and_scope_written():
    v = verdicts(s=summary(q1_agree=(False, True, True)))
    assert v.verdict.to_dict() == {f: "supported" for f in claim.FINDINGS}
    assert (v.reason == "criterion met").all()
    assert v.loc["dice_tie", "criterion"] == "all-cases Dice spread of the top models <= 0.01 (one seed)"
    assert "top 3 of the 4 models of this run" in v.loc["dice_tie", "models"]
    assert "best sign share 0.99" in v.loc["ranking_change", "observed"]
    assert v.loc["q1_boundary_separation", "lesion_set"] == "common"


def test_dice_tie_states():
    assert verdicts(s=summary(dice_spread=0.05)).loc["dice_tie", "verdict"] == "not_supported"
    # several seeds: a 0.03 spread within 2 x seed SD 0.02 is a tie; with one seed it is not
    assert verdicts(s=summary(dice_spread=0.03, n_seeds=3, dice_seed_sd=0.02)).loc["dice_tie", "verdict"] == "supported"
    noisy = summary(dice_spread=0.03, n_seeds=3, dice_seed_sd=0.01)
    assert verdicts(s=noisy).loc["dice_tie", "verdict"] == "not_supported"
    v = verdicts(san=sanity(failed=("metric_code",)))
    assert v.loc["dice_tie", "verdict"] == "inconclusive"
    assert "failed sanity check(s): metric_code (verdict would be supported)" in v.loc["dice_tie", "reason"]


def test_q1_separation_states():
    assert verdicts(s=summary(q1_hd95=15.0)).loc["q1_boundary_separation", "verdict"] == "not_supported"  # 1.5x
    assert (
        verdicts(s=summary(q1_hd95=8.0, overall_hd95=1.0, q1_asd=1.0)).loc["q1_boundary_separation", "verdict"]
        == "not_supported"
    )  # < 10 %
    assert verdicts(s=summary(q1_hd95=1.0, q1_asd=30.0)).loc["q1_boundary_separation", "verdict"] == "supported"
    v = verdicts(s=summary(q1_n=4))
    assert v.loc["q1_boundary_separation", "verdict"] == "inconclusive"
    assert v.loc["q1_boundary_separation", "reason"].startswith("too few common Q1 lesions (4 < 10)")
    v = verdicts(s=summary(dice_spread=0.05))  # not tied under Dice
    assert v.loc["q1_boundary_separation", "verdict"] == "inconclusive"
    assert "not tied under Dice (verdict would be supported)" in v.loc["q1_boundary_separation", "reason"]


def test_ranking_change_states():
    changed = summary(q1_agree=(False, True, True))
    assert verdicts(s=summary()).loc["ranking_change", "verdict"] == "not_supported"
    assert verdicts(s=changed).loc["ranking_change", "verdict"] == "supported"
    v = verdicts(s=changed, rob=robustness(0.7))
    assert v.loc["ranking_change", "verdict"] == "inconclusive"
    assert "not robust under case resampling and one seed only" in v.loc["ranking_change", "reason"]
    # a reversal under a metric whose order agrees with Dice does not count
    rob = robustness().assign(metric="asd")
    assert verdicts(s=changed, rob=rob).loc["ranking_change", "verdict"] == "inconclusive"


def test_smallest_quartile_states():
    q2_strongest = stratified((5.0, 50.0, 10.0, 5.0))
    assert verdicts(st=q2_strongest).loc["smallest_quartile_strongest", "verdict"] == "not_supported"
    v = verdicts(st=stratified(counts=(20, 3, 20, 20)))
    assert v.loc["smallest_quartile_strongest", "verdict"] == "inconclusive"
    assert "too few common lesions in Q2" in v.loc["smallest_quartile_strongest", "reason"]
    assert "Q1 50% (20 lesions)" in v.loc["smallest_quartile_strongest", "observed"]


def test_large_lesions_align_states():
    assert verdicts(s=summary(q4_tau=-1 / 3)).loc["large_lesions_align", "verdict"] == "not_supported"
    v = verdicts(s=summary(q4_n=2))
    assert v.loc["large_lesions_align", "verdict"] == "inconclusive"
    assert "too few common Q4 lesions (2 < 10)" in v.loc["large_lesions_align", "reason"]


def test_warnings_are_named_and_pooled_uses_every_data_set():
    s = pd.concat([summary(), summary(dataset="pooled", q1_agree=(False, True, True))], ignore_index=True)
    st = pd.concat([stratified(), stratified(dataset="pooled")], ignore_index=True)
    san = pd.concat([sanity(warned=("small_lesions",)), sanity(dataset="d2", failed=("quartiles",))], ignore_index=True)
    rob = pd.concat([robustness(), robustness(dataset="pooled")], ignore_index=True)
    out = claim.claim_check(s, st, rob, san, SETTINGS)
    d1 = out[out.dataset == "d1"].set_index("finding")
    assert d1.loc["q1_boundary_separation", "verdict"] == "supported"
    assert "warning: small_lesions" in d1.loc["q1_boundary_separation", "reason"]
    pooled = out[out.dataset == "pooled"].set_index("finding")
    assert pooled.loc["dice_tie", "verdict"] == "supported"  # does not depend on quartiles
    assert pooled.loc["ranking_change", "verdict"] == "inconclusive"
    assert "quartiles (d2)" in pooled.loc["ranking_change", "reason"]
    assert out.dataset.tolist()[-1] == "pooled"


def test_a_separation_noise_could_make_is_inconclusive_and_so_are_the_findings_built_on_it():
    """Two replicates of one model (the negative control) can show a Q1 spread and a reordering by chance:
    without a robust best-vs-worst pair the separation is inconclusive, and so are the quartile findings
    that presuppose it."""
    v = verdicts(s=summary(q1_agree=(False, True, True)), rob=robustness(sign_share=0.9, separation_share=0.8))
    assert v.loc["q1_boundary_separation", "verdict"] == "inconclusive"
    assert "not robust under case resampling" in v.loc["q1_boundary_separation", "reason"]
    assert "HD95 best-vs-worst sign share 0.8" in v.loc["q1_boundary_separation", "observed"]
    assert v.loc["ranking_change", "verdict"] == "inconclusive"
    for finding, prerequisite in (
        ("smallest_quartile_strongest", "q1_boundary_separation"),
        ("large_lesions_align", "ranking_change"),
    ):
        assert v.loc[finding, "verdict"] == "inconclusive"
        assert f"({prerequisite} is inconclusive)" in v.loc[finding, "reason"]
    # the pair that defines the spread is found whichever way round its robustness row is written
    swapped = robustness().rename(columns={"pair_first": "pair_second", "pair_second": "pair_first"})
    assert (
        verdicts(s=summary(q1_hd95=1.0, q1_asd=30.0), rob=swapped).loc["q1_boundary_separation", "verdict"]
        == "supported"
    )


def test_pooled_findings_are_held_to_the_pooled_bootstrap():
    """A pooled spread or reordering counts only when the pooled (data-set-stratified) resampling confirms it,
    as for a single data set: pooling does not turn noise into a finding."""
    s = summary(dataset="pooled", q1_agree=(False, True, True))
    st, san = stratified(dataset="pooled"), sanity()

    def pooled_verdicts(rob):
        return claim.claim_check(s, st, rob, san, SETTINGS).set_index("finding")

    robust = pooled_verdicts(robustness(dataset="pooled"))
    assert robust.loc["q1_boundary_separation", "verdict"] == "supported"
    assert robust.loc["ranking_change", "verdict"] == "supported"
    assert "sign share >= 0.975" in robust.loc["q1_boundary_separation", "criterion"]
    noisy = pooled_verdicts(robustness(dataset="pooled", sign_share=0.9, separation_share=0.8))
    for finding in ("q1_boundary_separation", "ranking_change"):
        assert noisy.loc[finding, "verdict"] == "inconclusive"
        assert "not robust under case resampling" in noisy.loc[finding, "reason"]
    # robustness rows of another data set say nothing about the pooled one
    assert pooled_verdicts(robustness(dataset="d1")).loc["ranking_change", "verdict"] == "inconclusive"
