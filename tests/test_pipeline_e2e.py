"""The whole study, end to end through snakemake, on the tiny configuration (a few cases, one epoch)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import planned_jobs, snakemake

DATASETS = ["synthetic_ct", "synthetic_fundus", "synthetic_mri"]
MODELS = ["attention_unet", "hybrid_transformer", "resunet", "unet"]
TABLES = [
    "overall_metrics.csv",
    "size_stratified_metrics.csv",
    "small_lesion_metrics.csv",
    "ranking_reversals.csv",
    "bootstrap_directional_robustness.csv",
    "study_summary.csv",
    "study_datasets.csv",
    "sanity_checks.csv",
    "claim_check.csv",
    "pairwise_tests.csv",
    "ranking_schemes.csv",
    "ranking_stability.csv",
]
# Cells a table may leave empty, and only in rows whose lesion set holds no lesion (n_lesions 0).
MAY_BE_EMPTY = {
    "value",
    "seed_sd",
    "dice_spread",
    "dice_seed_sd",
    "hd95_spread_pct",
    "asd_spread_pct",
    "contour_f1_spread",
    "recall_spread_pp",
    "hd95_agrees_with_dice",
    "asd_agrees_with_dice",
    "contour_f1_agrees_with_dice",
    "mean_kendall_tau",
    "dice_leader_hd95_rank",
}
# The verdict's cells empty by design: no p-value for dice_tie and untested rows, lesions_needed only where
# lesions decide an inconclusive row.
VERDICT_MAY_BE_EMPTY = {"p_value", "lesions_needed"}
FIGURES = [
    "overall_vs_small_lesion_comparison.png",
    "quartile_disagreement.png",
    "ranking_reversal_matrix.png",
    "qualitative_small_lesion_examples.png",
    "ranking_stability.png",
]


@pytest.fixture(scope="module")
def run(tiny_run):
    """The session's finished tiny run: its workflow copy holds results/ (with report.html) and figures/."""
    return tiny_run[0]


def test_every_output_exists(run):
    results, figures = run / "results", run / "figures"
    for name in TABLES + ["dataset_summary.csv"]:
        assert (results / name).stat().st_size > 0, name
    for name in FIGURES + [f"training_curves_{d}.png" for d in DATASETS]:
        assert (figures / name).stat().st_size > 10_000, name
    assert (results / "provenance.json").stat().st_size > 0
    html = (results / "report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "overall_metrics" in html
    for name in ("claim_check", "sanity_checks", "study_summary", "study_datasets", "provenance", "Verdict"):
        assert name in html, name
    for d in DATASETS:
        for m in MODELS:
            assert (results / "models" / d / m / "seed0" / "best.pt").is_file()
            assert (results / "metrics" / d / m / "seed0" / "per_lesion.csv").is_file()
            assert (results / "metrics" / d / m / "seed0" / "provenance.json").is_file()


def test_every_test_case_is_evaluated_for_every_model(run):
    results = run / "results"
    for d in DATASETS:
        split = pd.read_csv(results / "data" / d / "split.csv", dtype={"case_id": str})
        test_ids = sorted(split.loc[split["split"] == "test", "case_id"])
        for m in MODELS:
            per_case = pd.read_csv(results / "metrics" / d / m / "seed0" / "per_case.csv", dtype={"case_id": str})
            assert sorted(per_case["case_id"]) == test_ids
            ext = ".png" if d == "synthetic_fundus" else ".nii.gz"
            written = (results / "predictions" / d / m / "seed0").glob(f"*{ext}")
            assert sorted(p.name[: -len(ext)] for p in written) == test_ids


def test_tables_hold_their_invariants(run):
    results = run / "results"
    for name in TABLES:
        table = pd.read_csv(results / name)
        assert len(table) > 0, name
        if name == "claim_check.csv":
            table = table.drop(columns=list(VERDICT_MAY_BE_EMPTY))
        empty = table.isna()
        assert not empty[[c for c in table.columns if c not in MAY_BE_EMPTY]].any().any(), f"{name} has NaN"
        assert (table.loc[empty.any(axis=1), "n_lesions"] == 0).all() if empty.any().any() else True, name
    overall = pd.read_csv(results / "overall_metrics.csv")
    assert set(overall["dataset"]) == set(DATASETS) and set(overall["model"]) == set(MODELS)
    recall = overall.loc[overall["metric"] == "lesion_recall", "value"]
    assert ((recall >= 0) & (recall <= 1)).all()
    bounded = overall[overall["metric"].isin(["dice", "iou", "contour_f1", "nsd"])]
    assert ((bounded["value"] >= 0) & (bounded["value"] <= 1)).all()
    assert (bounded["ci_low"] <= bounded["value"] + 1e-12).all() and (
        bounded["value"] <= bounded["ci_high"] + 1e-12
    ).all()
    strat = pd.read_csv(results / "size_stratified_metrics.csv")
    assert set(strat["quartile"]) <= {"Q1", "Q2", "Q3", "Q4"} and "pooled" in set(strat["dataset"])
    small = pd.read_csv(results / "small_lesion_metrics.csv")
    assert "q1_upper_bound" in small.columns
    boot = pd.read_csv(results / "bootstrap_directional_robustness.csv")
    assert ((boot["sign_share"] >= 0) & (boot["sign_share"] <= 1)).all()
    pairs = {frozenset(p) for p in zip(boot["pair_first"], boot["pair_second"])}
    assert len(pairs) == 6  # every unordered pair of the four models
    reversals = pd.read_csv(results / "ranking_reversals.csv")
    assert set(reversals["stratum"]) <= {"overall", "Q1", "Q2", "Q3", "Q4"} and "overall" in set(reversals["stratum"])
    assert set(reversals["lesion_set"]) <= {"all", "common"} and set(boot["lesion_set"]) <= {"all", "common"}
    assert set(strat["lesion_set"]) == {"all", "detected", "common"}


def test_model_comparison_tables(run):
    results = run / "results"
    tests = pd.read_csv(results / "pairwise_tests.csv")
    assert set(tests["dataset"]) == set(DATASETS) | {"pooled"} and set(tests["lesion_set"]) <= {"all", "common"}
    assert ((tests["p_value"] > 0) & (tests["p_value"] <= 1)).all()
    assert (tests["p_holm"] >= tests["p_value"] - 1e-15).all() and (tests["p_holm"] <= 1).all()
    assert (tests["significant"] == (tests["p_holm"] < tests["alpha"])).all()
    assert (tests["ci_low"] <= tests["median_difference"] + 1e-12).all()
    assert (tests["size_bins"] == "test_quartiles").all()
    sizes = tests.groupby("family").size()
    assert (tests.set_index("family")["family_size"].groupby(level=0).first() == sizes).all()
    schemes = pd.read_csv(results / "ranking_schemes.csv")
    ranks = schemes.groupby(["dataset", "lesion_set", "stratum", "metric"])["rank_test_then_rank"]
    assert (ranks.apply(sorted).apply(list) == [[1, 2, 3, 4]] * ranks.ngroups).all()
    stab = pd.read_csv(results / "ranking_stability.csv")
    per_model = stab.groupby(["dataset", "lesion_set", "stratum", "metric", "model"])["share"].sum()
    assert np.allclose(per_model, 1.0)
    overall = pd.read_csv(results / "overall_metrics.csv")
    merged = overall[overall.metric == "lesion_recall_merged"]
    assert len(merged) == len(DATASETS) * len(MODELS) and merged["value"].between(0, 1).all()
    per_lesion = pd.read_csv(results / "metrics" / DATASETS[0] / MODELS[0] / "seed0" / "per_lesion.csv")
    ref = per_lesion[per_lesion.kind == "reference"]
    assert (ref["merged_lesion_id"] >= 1).all() and (
        per_lesion.loc[per_lesion.kind != "reference", "merged_lesion_id"] == 0
    ).all()
    assert merged[merged.model == MODELS[0]].query(f"dataset == '{DATASETS[0]}'")["n_lesions"].iloc[0] == len(
        ref.drop_duplicates(["case_id", "merged_lesion_id"])
    )


def test_q1_common_boundary_values_are_delineation_distances(run):
    """The common Q1 set holds the Q1 lesions every model detected, and its HD95 is the mean of their
    per-lesion boundary distances: recomputed here from the per-lesion tables, none of them a miss's penalty
    (which the `all` set's Q1 mean is dominated by)."""
    results = run / "results"
    small = pd.read_csv(results / "small_lesion_metrics.csv")
    checked = 0
    for d in DATASETS:
        lesions = pd.concat([pd.read_csv(results / "metrics" / d / m / "seed0" / "per_lesion.csv") for m in MODELS])
        lesions = lesions[lesions["kind"] == "reference"]
        penalty = lesions.loc[~lesions["detected"], "hd95"].min()  # the image diagonal a miss scores
        common = small[(small.dataset == d) & (small.lesion_set == "common") & (small.metric == "hd95")]
        assert common["n_lesions"].nunique() == 1  # the same lesions for every model
        n_common = int(common["n_lesions"].iloc[0])
        if n_common == 0:
            continue
        q1 = lesions[lesions["size_fraction"] <= common["q1_upper_bound"].iloc[0]]
        hits = q1.groupby(["case_id", "lesion_id"])["detected"].agg(["all", "size"])
        keys = hits[hits["all"] & (hits["size"] == len(MODELS))].index
        assert len(keys) == n_common, (d, len(keys), n_common)
        for r in common.itertuples():
            own = q1[q1.model == r.model].set_index(["case_id", "lesion_id"]).loc[keys, "hd95"]
            assert (own < penalty).all() if pd.notna(penalty) else True
            assert r.value == pytest.approx(own.mean(), rel=1e-9), (d, r.model)
        checked += 1
    assert checked >= 1, "no data set has a common Q1 lesion"


def test_verdict_and_sanity_rows(run):
    results = run / "results"
    verdict = pd.read_csv(results / "claim_check.csv")
    assert set(verdict["dataset"]) == set(DATASETS) | {"pooled"}
    assert len(verdict) == 5 * (len(DATASETS) + 1)
    assert set(verdict["verdict"]) <= {"supported", "not_supported", "inconclusive"}
    assert verdict["reason"].str.len().min() > 0 and verdict["criterion"].str.len().min() > 0
    checks = pd.read_csv(results / "sanity_checks.csv")
    assert len(checks) == 7 * len(DATASETS) and set(checks["status"]) <= {"pass", "warn", "fail"}
    # one run, one metric code and settings per data set, nothing missing
    ok = checks[
        checks["check"].isin(["quartiles", "metric_code", "postprocessing", "connectivity", "completeness", "borders"])
    ]
    assert (ok["status"] == "pass").all(), ok[ok.status != "pass"].to_dict("records")
    import json

    record = json.loads((results / "provenance.json").read_text())
    assert set(record["metric_settings"]) == set(DATASETS)
    assert all(len(v) == 1 for v in record["metric_settings"].values())
    assert len(record["config_sha256"]) == 64 and record["packages"]["numpy"] != "not installed"


def test_rerun_has_nothing_to_do(run):
    assert planned_jobs(snakemake(run, "-n")) == {}


def test_external_predictions_enter_the_study_as_another_model(run, tmp_path):
    """A copy of one model's predictions, given as an external model, scores exactly like that model.

    Runs on a copy of the results (timestamps kept), so the shared run stays untouched."""
    results = tmp_path / "results"
    for part in ("data", "predictions", "metrics"):
        shutil.copytree(run / "results" / part, results / part)
    for d in DATASETS:
        shutil.copytree(run / "results" / "predictions" / d / "unet" / "seed0", tmp_path / "external" / d)
    proc = snakemake(
        run,
        str(results / "overall_metrics.csv"),
        "--cores",
        "2",
        "--config",
        f"results={results}",
        f"figures={tmp_path / 'figures'}",
        f"external_models={{'copied': '{tmp_path / 'external'}/{{dataset}}'}}",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert "rule train:" not in log and "rule predict:" not in log  # nothing is trained or predicted for it
    overall = pd.read_csv(results / "overall_metrics.csv")
    assert set(overall["model"]) == set(MODELS) | {"copied"}
    values = overall.set_index(["dataset", "model", "metric"])["value"]
    for d in DATASETS:
        np.testing.assert_allclose(values.loc[d, "copied"].sort_index(), values.loc[d, "unet"].sort_index())
