# The answer of every run (answer/: the tables the report opens on and the text `make run` and `lesionbench
# compare` print at the end), and in an evaluation-only run (`lesionbench compare`, COMPARE_MODE in
# common.smk) summary/{dataset}.json per data set.


import os


rule answer:
    input:
        overall=f"{R}/overall_metrics.csv",
        small=f"{R}/small_lesion_metrics.csv",
        claim=f"{R}/claim_check.csv",
        robustness=f"{R}/bootstrap_directional_robustness.csv",
        datasets=f"{R}/study_datasets.csv",
        code=script_code("compare_answer.py"),
    output:
        models=f"{R}/answer/models.csv",
        verdict=f"{R}/answer/verdict.csv",
        display=f"{R}/answer/verdict_display.csv",
        text=f"{R}/answer/summary.txt",
    log:
        f"{R}/logs/answer.log",
    benchmark:
        f"{R}/benchmarks/answer.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        report=f"{R}/report.html",
    script:
        "../../scripts/compare_answer.py"


TARGETS += rules.answer.output

if COMPARE_MODE:
    COMPARE_SEED = SEEDS[0]

    rule compare_summary:
        input:
            per_case=expand(
                f"{R}/metrics/{{{{dataset}}}}/{{model}}/seed{COMPARE_SEED}/per_case.csv",
                model=MODELS,
            ),
            code=script_code("compare_summary.py"),
        output:
            summary=f"{R}/summary/{{dataset}}.json",
        log:
            f"{R}/logs/compare_summary/{{dataset}}.log",
        benchmark:
            f"{R}/benchmarks/compare_summary/{{dataset}}.tsv"
        conda:
            "../../envs/lesionbench.yaml"
        params:
            models=MODELS,
            settings=lambda wc: {
                "reference": config["datasets"][wc.dataset]["path"],
                "predictions": {m: os.path.realpath(predictions_dir(wc.dataset, m, COMPARE_SEED)) for m in MODELS},
                "evaluation": config["datasets"][wc.dataset]["evaluation"],
                "postprocessing": config["postprocessing"],
                "distance_penalty_mm": config["evaluation"]["distance_penalty_mm"],
                "surface_definition": config["evaluation"].get("surface_definition", "voxel"),
                **PREDICTION_READING,
            },
        script:
            "../../scripts/compare_summary.py"

    TARGETS += expand(f"{R}/summary/{{dataset}}.json", dataset=DATASETS)
