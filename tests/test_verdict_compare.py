"""The verdict through ``lesionbench compare`` on PNG prediction folders of four models: drawn from one
per-lesion error law (exchangeable models: no boundary finding may be supported, nor "would be"), and with
a planted small-lesion boundary effect under tied Dice (it must be found)."""

import pandas as pd
import pytest

from lesionbench.cli import main as lesionbench
from null_study_fixtures import null_study

BOUNDARY = ["q1_boundary_separation", "ranking_change", "smallest_quartile_strongest", "large_lesions_align"]


def compare(root, planted=()):
    refs, folders = null_study(root, seed=7 if not planted else 8, planted=planted)
    out = root / "out"
    args = ["compare", "--reference", str(refs), "--out", str(out), "--cores", "2"]
    args += ["--tolerance-mm", "1", "--dilation-mm", "3", "--min-component-voxels", "0"]
    for model, folder in folders.items():
        args += ["--predictions", f"{model}={folder}"]
    assert lesionbench(args) == 0
    return pd.read_csv(out / "claim_check.csv"), pd.read_csv(out / "size_stratified_metrics.csv")


@pytest.mark.slow
def test_exchangeable_models_get_no_boundary_finding(tmp_path):
    verdict, _ = compare(tmp_path)
    boundary = verdict[verdict.finding.isin(BOUNDARY)]
    assert not (boundary.verdict == "supported").any(), boundary[["finding", "verdict", "reason"]]
    assert not boundary.reason.str.contains("would be supported").any(), boundary.reason.tolist()
    assert (verdict.alpha == 0.05).all()


@pytest.mark.slow
def test_a_planted_small_lesion_effect_under_tied_dice_is_supported(tmp_path):
    verdict, stratified = compare(tmp_path, planted=("model_a", "model_b"))
    q1 = stratified[(stratified.lesion_set == "common") & (stratified.quartile == "Q1") & (stratified.metric == "hd95")]
    hd95 = q1.groupby("model")["value"].first()
    assert hd95[["model_a", "model_b"]].min() > 4 * hd95[["model_c", "model_d"]].max()
    rows = verdict[verdict.dataset != "pooled"].set_index("finding")  # one data set: no pooled rows
    assert rows.loc["dice_tie", "verdict"] == "supported"
    for finding in ("q1_boundary_separation", "ranking_change"):
        assert rows.loc[finding, "verdict"] == "supported", rows.loc[finding].to_dict()
        assert rows.loc[finding, "p_value"] <= 0.05
