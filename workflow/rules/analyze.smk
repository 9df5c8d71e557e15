# Stage rules: analyze. The study tables from the per-case / per-lesion metric tables of every data set x
# model x seed (plus each data set's split, lesion table and quartile edges, to check nothing is missing).
# One rule per group of tables so a change re-runs only what it affects: the bootstrap settings reach only
# the overall table (CIs) and the pairwise robustness table; `top_k` only the latter; `claim.min_lesions`
# (the insufficient_lesions flag) the size-stratified, ranking and robustness tables. Each rule tracks the
# library files its script imports.

METRIC_TABLES = f"{R}/metrics/{{dataset}}/{{model}}/seed{{seed}}"

STUDY_INPUTS = {
    "per_case": expand(f"{METRIC_TABLES}/per_case.csv", dataset=DATASETS, model=MODELS, seed=SEEDS),
    "per_lesion": expand(f"{METRIC_TABLES}/per_lesion.csv", dataset=DATASETS, model=MODELS, seed=SEEDS),
    "split": expand(f"{R}/data/{{dataset}}/split.csv", dataset=DATASETS),
    "lesions": expand(f"{R}/data/{{dataset}}/lesions.csv", dataset=DATASETS),
    "quartiles": expand(f"{R}/data/{{dataset}}/quartiles.csv", dataset=DATASETS),
}
# Params: only the statistics keys a table depends on (a new top_k re-runs the robustness table alone).
BOOTSTRAP_SETTINGS = {k: config["statistics"][k] for k in ("bootstrap_resamples", "bootstrap_seed", "confidence")}
ROBUSTNESS_SETTINGS = {**BOOTSTRAP_SETTINGS, "top_k": config["statistics"]["top_k"]}
# The lesion count below which a lesion-set stratum is flagged insufficient_lesions.
LESION_COUNT_SETTINGS = {"min_lesions": config["claim"]["min_lesions"]}


rule overall_metrics:
    input:
        **STUDY_INPUTS,
        code=script_code("analyze_overall.py"),
    output:
        table=report(
            f"{R}/overall_metrics.csv",
            caption="../report/overall_metrics.rst",
            category="Study tables",
            labels={"table": "overall metrics"},
        ),
    log:
        f"{R}/logs/analyze/overall_metrics.log",
    benchmark:
        f"{R}/benchmarks/analyze/overall_metrics.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        statistics=BOOTSTRAP_SETTINGS,
    script:
        "../../scripts/analyze_overall.py"


rule size_stratified_metrics:
    input:
        **STUDY_INPUTS,
        code=script_code("analyze_size_stratified.py"),
    output:
        stratified=report(
            f"{R}/size_stratified_metrics.csv",
            caption="../report/size_stratified_metrics.rst",
            category="Study tables",
            labels={"table": "size-stratified metrics"},
        ),
        small=report(
            f"{R}/small_lesion_metrics.csv",
            caption="../report/small_lesion_metrics.rst",
            category="Study tables",
            labels={"table": "small-lesion (Q1) metrics"},
        ),
    log:
        f"{R}/logs/analyze/size_stratified_metrics.log",
    benchmark:
        f"{R}/benchmarks/analyze/size_stratified_metrics.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        claim=LESION_COUNT_SETTINGS,
    script:
        "../../scripts/analyze_size_stratified.py"


rule ranking_reversals:
    input:
        **STUDY_INPUTS,
        code=script_code("analyze_ranking.py"),
    output:
        ranking=report(
            f"{R}/ranking_reversals.csv",
            caption="../report/ranking_reversals.rst",
            category="Study tables",
            labels={"table": "ranking reversals"},
        ),
        summary=report(
            f"{R}/ranking_reversal_summary.csv",
            caption="../report/ranking_reversal_summary.rst",
            category="Study tables",
            labels={"table": "ranking reversal summary"},
        ),
    log:
        f"{R}/logs/analyze/ranking_reversals.log",
    benchmark:
        f"{R}/benchmarks/analyze/ranking_reversals.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        claim=LESION_COUNT_SETTINGS,
    script:
        "../../scripts/analyze_ranking.py"


rule bootstrap_directional_robustness:
    input:
        **STUDY_INPUTS,
        code=script_code("analyze_bootstrap.py"),
    output:
        table=report(
            f"{R}/bootstrap_directional_robustness.csv",
            caption="../report/bootstrap_directional_robustness.rst",
            category="Study tables",
            labels={"table": "bootstrap directional robustness"},
        ),
    log:
        f"{R}/logs/analyze/bootstrap_directional_robustness.log",
    benchmark:
        f"{R}/benchmarks/analyze/bootstrap_directional_robustness.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        statistics=ROBUSTNESS_SETTINGS,
        claim=LESION_COUNT_SETTINGS,
    script:
        "../../scripts/analyze_bootstrap.py"


# Model comparisons as evaluation practice reports them: one pass over the sums and the bootstrap weights
# writes the paired tests, the three ranking schemes and the rank stability (docs/results.md).
COMPARISON_SETTINGS = {**BOOTSTRAP_SETTINGS, "test_alpha": config["statistics"]["test_alpha"]}


rule model_comparisons:
    input:
        **STUDY_INPUTS,
        code=script_code("analyze_comparisons.py"),
    output:
        pairwise=report(
            f"{R}/pairwise_tests.csv",
            caption="../report/pairwise_tests.rst",
            category="Model comparisons",
            labels={"table": "paired tests"},
        ),
        schemes=report(
            f"{R}/ranking_schemes.csv",
            caption="../report/ranking_schemes.rst",
            category="Model comparisons",
            labels={"table": "ranking schemes"},
        ),
        stability=report(
            f"{R}/ranking_stability.csv",
            caption="../report/ranking_stability.rst",
            category="Model comparisons",
            labels={"table": "rank stability"},
        ),
    log:
        f"{R}/logs/analyze/model_comparisons.log",
    benchmark:
        f"{R}/benchmarks/analyze/model_comparisons.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        statistics=COMPARISON_SETTINGS,
        claim=LESION_COUNT_SETTINGS,
    script:
        "../../scripts/analyze_comparisons.py"


TARGETS += [
    f"{R}/pairwise_tests.csv",
    f"{R}/ranking_schemes.csv",
    f"{R}/ranking_stability.csv",
]


CLAIM_SETTINGS = dict(config["claim"])
PROVENANCE_SIDECARS = expand(f"{METRIC_TABLES}/provenance.json", dataset=DATASETS, model=MODELS, seed=SEEDS)


rule study_summary:
    input:
        **STUDY_INPUTS,
        code=script_code("analyze_study_summary.py"),
    output:
        summary=report(
            f"{R}/study_summary.csv",
            caption="../report/study_summary.rst",
            category="Verdict",
            labels={"table": "study summary"},
        ),
        datasets=report(
            f"{R}/study_datasets.csv",
            caption="../report/study_datasets.rst",
            category="Verdict",
            labels={"table": "data sets of the study"},
        ),
    log:
        f"{R}/logs/analyze/study_summary.log",
    benchmark:
        f"{R}/benchmarks/analyze/study_summary.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        statistics={"top_k": config["statistics"]["top_k"]},
        claim=LESION_COUNT_SETTINGS,
    script:
        "../../scripts/analyze_study_summary.py"


rule sanity_checks:
    input:
        **STUDY_INPUTS,
        provenance=PROVENANCE_SIDECARS,
        small=f"{R}/small_lesion_metrics.csv",
        code=script_code("analyze_sanity_checks.py"),
    output:
        table=report(
            f"{R}/sanity_checks.csv",
            caption="../report/sanity_checks.rst",
            category="Verdict",
            labels={"table": "sanity checks"},
        ),
    log:
        f"{R}/logs/analyze/sanity_checks.log",
    benchmark:
        f"{R}/benchmarks/analyze/sanity_checks.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        claim=LESION_COUNT_SETTINGS,
    script:
        "../../scripts/analyze_sanity_checks.py"


# The verdict's permutation tests relabel the per-case sums (STUDY_INPUTS); the prepared cases give the voxel
# spacing of the resolution floor; the committed power table says how many lesions would decide a finding.
VERDICT_POWER = str(SRC / "stats" / "verdict_power.csv")


rule claim_check:
    input:
        **STUDY_INPUTS,
        prepared=expand(f"{R}/data/{{dataset}}/prepared", dataset=DATASETS),
        summary=f"{R}/study_summary.csv",
        sanity=f"{R}/sanity_checks.csv",
        power=VERDICT_POWER,
        code=script_code("analyze_claim_check.py"),
    output:
        table=report(
            f"{R}/claim_check.csv",
            caption="../report/claim_check.rst",
            category="Verdict",
            labels={"table": "claim check (verdict)"},
        ),
    log:
        f"{R}/logs/analyze/claim_check.log",
    benchmark:
        f"{R}/benchmarks/analyze/claim_check.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        claim=CLAIM_SETTINGS,
    script:
        "../../scripts/analyze_claim_check.py"


rule provenance:
    input:
        provenance=PROVENANCE_SIDECARS,
        quartiles=STUDY_INPUTS["quartiles"],
        code=script_code("analyze_provenance.py"),
    output:
        record=report(
            f"{R}/provenance.json",
            caption="../report/provenance.rst",
            category="Verdict",
            labels={"table": "provenance"},
        ),
    log:
        f"{R}/logs/analyze/provenance.log",
    benchmark:
        f"{R}/benchmarks/analyze/provenance.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        # the whole resolved config: its hash is recorded, so any config change rewrites this small file
        config=config,
    script:
        "../../scripts/analyze_provenance.py"


TARGETS += [
    f"{R}/study_summary.csv",
    f"{R}/study_datasets.csv",
    f"{R}/sanity_checks.csv",
    f"{R}/claim_check.csv",
    f"{R}/provenance.json",
]
TARGETS += [
    f"{R}/overall_metrics.csv",
    f"{R}/size_stratified_metrics.csv",
    f"{R}/small_lesion_metrics.csv",
    f"{R}/ranking_reversals.csv",
    f"{R}/ranking_reversal_summary.csv",
    f"{R}/bootstrap_directional_robustness.csv",
]
