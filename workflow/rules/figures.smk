# Stage rules: figures, and the HTML report (`snakemake --report results/report.html` collects every output
# marked with report(...) below and in analyze.smk, each with its caption from workflow/report/).
# Figures read the study tables, except the qualitative examples (metric tables, prepared cases and
# predictions) and the training curves (training logs only: they never wait for evaluation).

QUALITATIVE_SEED = SEEDS[0]  # the examples show the first configured seed


report: "../report/workflow.rst"


rule figure_overall_vs_small_lesion:
    input:
        overall=f"{R}/overall_metrics.csv",
        small=f"{R}/small_lesion_metrics.csv",
        code=script_code("figures_overall_vs_small.py"),
    output:
        figure=report(f"{FIGURES}/overall_vs_small_lesion_comparison.png",
                      caption="../report/overall_vs_small_lesion_comparison.rst", category="Figures",
                      labels={"figure": "overall vs small-lesion spread"}),
    log:
        f"{R}/logs/figures/overall_vs_small_lesion_comparison.log",
    benchmark:
        f"{R}/benchmarks/figures/overall_vs_small_lesion_comparison.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    script:
        "../../scripts/figures_overall_vs_small.py"


rule figure_quartile_disagreement:
    input:
        stratified=f"{R}/size_stratified_metrics.csv",
        code=script_code("figures_quartile_disagreement.py"),
    output:
        figure=report(f"{FIGURES}/quartile_disagreement.png", caption="../report/quartile_disagreement.rst",
                      category="Figures", labels={"figure": "disagreement per size quartile"}),
    log:
        f"{R}/logs/figures/quartile_disagreement.log",
    benchmark:
        f"{R}/benchmarks/figures/quartile_disagreement.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    script:
        "../../scripts/figures_quartile_disagreement.py"


rule figure_ranking_reversal_matrix:
    input:
        ranking=f"{R}/ranking_reversals.csv",
        code=script_code("figures_ranking_matrix.py"),
    output:
        figure=report(f"{FIGURES}/ranking_reversal_matrix.png", caption="../report/ranking_reversal_matrix.rst",
                      category="Figures", labels={"figure": "ranking reversal matrix"}),
    log:
        f"{R}/logs/figures/ranking_reversal_matrix.log",
    benchmark:
        f"{R}/benchmarks/figures/ranking_reversal_matrix.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    script:
        "../../scripts/figures_ranking_matrix.py"


rule figure_qualitative_examples:
    input:
        per_case=expand(f"{R}/metrics/{{dataset}}/{{model}}/seed{QUALITATIVE_SEED}/per_case.csv",
                        dataset=DATASETS, model=MODELS),
        per_lesion=expand(f"{R}/metrics/{{dataset}}/{{model}}/seed{QUALITATIVE_SEED}/per_lesion.csv",
                          dataset=DATASETS, model=MODELS),
        lesions=expand(f"{R}/data/{{dataset}}/lesions.csv", dataset=DATASETS),
        quartiles=expand(f"{R}/data/{{dataset}}/quartiles.csv", dataset=DATASETS),
        prepared=expand(f"{R}/data/{{dataset}}/prepared", dataset=DATASETS),
        predictions=[predictions_dir(d, m, QUALITATIVE_SEED) for d in DATASETS for m in MODELS],
        code=script_code("figures_qualitative.py"),
    output:
        figure=report(f"{FIGURES}/qualitative_small_lesion_examples.png",
                      caption="../report/qualitative_small_lesion_examples.rst", category="Figures",
                      labels={"figure": "qualitative small-lesion examples"}),
    params:
        prediction_keys=[[d, m] for d in DATASETS for m in MODELS],
        examples_per_dataset=2,
        threshold=PREDICTION_THRESHOLD,
        dice_tolerance=0.05,
    log:
        f"{R}/logs/figures/qualitative_small_lesion_examples.log",
    benchmark:
        f"{R}/benchmarks/figures/qualitative_small_lesion_examples.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    script:
        "../../scripts/figures_qualitative.py"


rule figure_training_curves:
    input:
        logs=expand(f"{R}/models/{{dataset}}/{{model}}/seed{{seed}}/train_log.csv", model=TRAINED_MODELS, seed=SEEDS,
                    allow_missing=True),
        code=script_code("figures_training_curves.py"),
    output:
        figure=report(f"{FIGURES}/training_curves_{{dataset}}.png", caption="../report/training_curves.rst",
                      category="Training", labels={"figure": "training curves", "data set": "{dataset}"}),
    log:
        f"{R}/logs/figures/training_curves_{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/figures/training_curves_{{dataset}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    script:
        "../../scripts/figures_training_curves.py"


TARGETS += [
    f"{FIGURES}/overall_vs_small_lesion_comparison.png",
    f"{FIGURES}/quartile_disagreement.png",
    f"{FIGURES}/ranking_reversal_matrix.png",
    f"{FIGURES}/qualitative_small_lesion_examples.png",
] + expand(f"{FIGURES}/training_curves_{{dataset}}.png", dataset=DATASETS if TRAINED_MODELS else [])
