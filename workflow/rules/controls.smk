# Controls stage (docs/controls.md): simulated models with known failure modes, built from each data set's
# test references and calibrated to one overall Dice, then evaluated by the evaluate rule and analysed by the
# analysis and figure rules of the study, reused here (`use rule`, figure rules keeping their figure_ prefix)
# with their own inputs and outputs. The controls never enter the trained models' tables: their files live
# under results/controls/ and figures/controls/, and the report shows them under "Controls".
#   positive: one control per failure mode (controls.perturbations); the analysis must find the planted effect.
#   negative: two replicates of one perturbation, each calibrated to the same Dice, different seeds; it must
#   find nothing.

CONTROLS = config["controls"]
CR = f"{R}/controls"
CONTROL_SEED = 0  # controls do not train: one seed folder, as lesionbench.controls.dataset.CONTROL_SEED
# Model names of the controls, as lesionbench.controls.dataset.control_specs makes them (the script checks).
CONTROL_MODELS = {
    "positive": list(CONTROLS["perturbations"]),
    "negative": ["replicate_a", "replicate_b"],
}
ALL_CONTROLS = CONTROL_MODELS["positive"] + CONTROL_MODELS["negative"]
CONTROL_GROUP = "positive|negative"


# Input functions: one metric-stage file (per_case.csv, per_lesion.csv, provenance.json) of every control of a
# group ({group} wildcard), on every data set.
CONTROL_FILES = {
    name: (
        lambda name: lambda w: expand(
            f"{CR}/metrics/{{dataset}}/{{model}}/seed{CONTROL_SEED}/{name}",
            dataset=DATASETS,
            model=CONTROL_MODELS[w.group],
        )
    )(name)
    for name in ("per_case.csv", "per_lesion.csv", "provenance.json")
}
CONTROL_STUDY_INPUTS = {
    "per_case": CONTROL_FILES["per_case.csv"],
    "per_lesion": CONTROL_FILES["per_lesion.csv"],
    "split": expand(f"{R}/data/{{dataset}}/split.csv", dataset=DATASETS),
    "lesions": expand(f"{R}/data/{{dataset}}/lesions.csv", dataset=DATASETS),
    "quartiles": expand(f"{R}/data/{{dataset}}/quartiles.csv", dataset=DATASETS),
}
# Where the report shows a control group's outputs (its labels add {"controls": "{group}"}).
IN_CONTROLS = {"category": "Controls", "subcategory": "{group}"}


rule controls_predictions:
    input:
        prepared=f"{R}/data/{{dataset}}/prepared",
        split=f"{R}/data/{{dataset}}/split.csv",
        code=script_code("controls_predict.py"),
    output:
        predictions=[directory(f"{CR}/predictions/{{dataset}}/{name}/seed{CONTROL_SEED}") for name in ALL_CONTROLS],
        calibration=f"{CR}/calibration/{{dataset}}.csv",
    log:
        f"{R}/logs/controls/predictions/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/controls/predictions/{{dataset}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        names=ALL_CONTROLS,
        controls={k: v for k, v in CONTROLS.items() if k != "enabled"},
        postprocessing=config["postprocessing"],
    script:
        "../../scripts/controls_predict.py"


rule controls_calibration:
    input:
        tables=expand(f"{CR}/calibration/{{dataset}}.csv", dataset=DATASETS),
        code=script_code("controls_calibration.py"),
    output:
        table=report(
            f"{CR}/calibration.csv",
            caption="../report/controls_calibration.rst",
            category="Controls",
            subcategory="calibration",
            labels={"table": "calibrated strengths"},
        ),
    log:
        f"{R}/logs/controls/calibration.log",
    benchmark:
        f"{R}/benchmarks/controls/calibration.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    script:
        "../../scripts/controls_calibration.py"


use rule evaluate as controls_evaluate with:
    input:
        predictions=f"{CR}/predictions/{{dataset}}/{{model}}/seed{{seed}}",
        prepared=f"{R}/data/{{dataset}}/prepared",
        split=f"{R}/data/{{dataset}}/split.csv",
        lesions=f"{R}/data/{{dataset}}/lesions.csv",
        code=script_code("evaluate.py"),
    output:
        per_case=f"{CR}/metrics/{{dataset}}/{{model}}/seed{{seed}}/per_case.csv",
        per_lesion=f"{CR}/metrics/{{dataset}}/{{model}}/seed{{seed}}/per_lesion.csv",
        provenance=f"{CR}/metrics/{{dataset}}/{{model}}/seed{{seed}}/provenance.json",
    log:
        f"{R}/logs/controls/evaluate/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/controls/evaluate/{{dataset}}/{{model}}/seed{{seed}}.tsv"


use rule overall_metrics as controls_overall_metrics with:
    input:
        **CONTROL_STUDY_INPUTS,
        code=script_code("analyze_overall.py"),
    output:
        table=report(
            f"{CR}/{{group}}/overall_metrics.csv",
            caption="../report/overall_metrics.rst",
            labels={"table": "overall metrics", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/overall_metrics.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/overall_metrics.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


use rule size_stratified_metrics as controls_size_stratified_metrics with:
    input:
        **CONTROL_STUDY_INPUTS,
        code=script_code("analyze_size_stratified.py"),
    output:
        stratified=report(
            f"{CR}/{{group}}/size_stratified_metrics.csv",
            caption="../report/size_stratified_metrics.rst",
            labels={"table": "size-stratified metrics", "controls": "{group}"},
            **IN_CONTROLS,
        ),
        small=report(
            f"{CR}/{{group}}/small_lesion_metrics.csv",
            caption="../report/small_lesion_metrics.rst",
            labels={"table": "small-lesion (Q1) metrics", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/size_stratified_metrics.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/size_stratified_metrics.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


use rule ranking_reversals as controls_ranking_reversals with:
    input:
        **CONTROL_STUDY_INPUTS,
        code=script_code("analyze_ranking.py"),
    output:
        ranking=report(
            f"{CR}/{{group}}/ranking_reversals.csv",
            caption="../report/ranking_reversals.rst",
            labels={"table": "ranking reversals", "controls": "{group}"},
            **IN_CONTROLS,
        ),
        summary=report(
            f"{CR}/{{group}}/ranking_reversal_summary.csv",
            caption="../report/ranking_reversal_summary.rst",
            labels={"table": "ranking reversal summary", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/ranking_reversals.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/ranking_reversals.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


use rule bootstrap_directional_robustness as controls_bootstrap_directional_robustness with:
    input:
        **CONTROL_STUDY_INPUTS,
        code=script_code("analyze_bootstrap.py"),
    output:
        table=report(
            f"{CR}/{{group}}/bootstrap_directional_robustness.csv",
            caption="../report/bootstrap_directional_robustness.rst",
            labels={"table": "bootstrap directional robustness", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/bootstrap_directional_robustness.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/bootstrap_directional_robustness.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


use rule figure_overall_vs_small_lesion as figure_controls_overall_vs_small_lesion with:
    input:
        overall=f"{CR}/{{group}}/overall_metrics.csv",
        small=f"{CR}/{{group}}/small_lesion_metrics.csv",
        code=script_code("figures_overall_vs_small.py"),
    output:
        figure=report(
            f"{FIGURES}/controls/{{group}}/overall_vs_small_lesion_comparison.png",
            caption="../report/overall_vs_small_lesion_comparison.rst",
            labels={"figure": "overall vs small-lesion spread", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/figure_overall_vs_small_lesion.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/figure_overall_vs_small_lesion.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


use rule figure_quartile_disagreement as figure_controls_quartile_disagreement with:
    input:
        stratified=f"{CR}/{{group}}/size_stratified_metrics.csv",
        code=script_code("figures_quartile_disagreement.py"),
    output:
        figure=report(
            f"{FIGURES}/controls/{{group}}/quartile_disagreement.png",
            caption="../report/quartile_disagreement.rst",
            labels={"figure": "disagreement per size quartile", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/figure_quartile_disagreement.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/figure_quartile_disagreement.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


# The verdict on the controls: every control of a group counts as a "top model" (statistics.top_k is the
# group's size), since the controls are tied under Dice by construction and all of them carry the planted effect.
use rule study_summary as controls_study_summary with:
    input:
        **CONTROL_STUDY_INPUTS,
        code=script_code("analyze_study_summary.py"),
    output:
        summary=report(
            f"{CR}/{{group}}/study_summary.csv",
            caption="../report/study_summary.rst",
            labels={"table": "study summary", "controls": "{group}"},
            **IN_CONTROLS,
        ),
        datasets=f"{CR}/{{group}}/study_datasets.csv",
    log:
        f"{R}/logs/controls/{{group}}/study_summary.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/study_summary.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,
    params:
        statistics=lambda w: {"top_k": len(CONTROL_MODELS[w.group])},
        claim=LESION_COUNT_SETTINGS,


use rule sanity_checks as controls_sanity_checks with:
    input:
        **CONTROL_STUDY_INPUTS,
        provenance=CONTROL_FILES["provenance.json"],
        small=f"{CR}/{{group}}/small_lesion_metrics.csv",
        code=script_code("analyze_sanity_checks.py"),
    output:
        table=report(
            f"{CR}/{{group}}/sanity_checks.csv",
            caption="../report/sanity_checks.rst",
            labels={"table": "sanity checks", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/sanity_checks.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/sanity_checks.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


use rule claim_check as controls_claim_check with:
    input:
        **CONTROL_STUDY_INPUTS,
        prepared=expand(f"{R}/data/{{dataset}}/prepared", dataset=DATASETS),
        summary=f"{CR}/{{group}}/study_summary.csv",
        sanity=f"{CR}/{{group}}/sanity_checks.csv",
        power=VERDICT_POWER,
        code=script_code("analyze_claim_check.py"),
    output:
        table=report(
            f"{CR}/{{group}}/claim_check.csv",
            caption="../report/claim_check.rst",
            labels={"table": "claim check (verdict)", "controls": "{group}"},
            **IN_CONTROLS,
        ),
    log:
        f"{R}/logs/controls/{{group}}/claim_check.log",
    benchmark:
        f"{R}/benchmarks/controls/{{group}}/claim_check.tsv"
    wildcard_constraints:
        group=CONTROL_GROUP,


CONTROL_TABLES = [
    "overall_metrics",
    "size_stratified_metrics",
    "small_lesion_metrics",
    "ranking_reversals",
    "ranking_reversal_summary",
    "bootstrap_directional_robustness",
    "study_summary",
    "sanity_checks",
    "claim_check",
]
CONTROL_FIGURES = ["overall_vs_small_lesion_comparison", "quartile_disagreement"]

# The evaluation-only run (`lesionbench compare`) scores the given predictions only: no controls there.
if CONTROLS["enabled"] and not COMPARE_MODE:
    TARGETS += [f"{CR}/calibration.csv"]
    TARGETS += expand(f"{CR}/{{group}}/{{table}}.csv", group=list(CONTROL_MODELS), table=CONTROL_TABLES)
    TARGETS += expand(
        f"{FIGURES}/controls/{{group}}/{{figure}}.png", group=list(CONTROL_MODELS), figure=CONTROL_FIGURES
    )
