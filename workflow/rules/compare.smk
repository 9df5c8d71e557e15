# Evaluation-only run of one data set (`lesionbench compare`, COMPARE_MODE in common.smk): summary.json and
# each model's tables under metrics/{model}/, beside the study tables and figures the other stages write.
# Outside that mode this file adds nothing.

if COMPARE_MODE:
    COMPARE_DATASET = DATASETS[0]
    COMPARE_SEED = SEEDS[0]

    rule compare_summary:
        input:
            per_case=expand(
                f"{R}/metrics/{COMPARE_DATASET}/{{model}}/seed{COMPARE_SEED}/per_case.csv",
                model=MODELS,
            ),
            per_lesion=expand(
                f"{R}/metrics/{COMPARE_DATASET}/{{model}}/seed{COMPARE_SEED}/per_lesion.csv",
                model=MODELS,
            ),
            code=script_code("compare_summary.py"),
        output:
            summary=f"{R}/summary.json",
            per_case=expand(f"{R}/metrics/{{model}}/per_case.csv", model=MODELS),
            per_lesion=expand(f"{R}/metrics/{{model}}/per_lesion.csv", model=MODELS),
        log:
            f"{R}/logs/compare_summary.log",
        benchmark:
            f"{R}/benchmarks/compare_summary.tsv"
        conda:
            "../../envs/lesionbench.yaml"
        params:
            dataset=COMPARE_DATASET,
            models=MODELS,
            settings={
                "reference": config["datasets"][COMPARE_DATASET]["path"],
                "predictions": {
                    m: predictions_dir(COMPARE_DATASET, m, COMPARE_SEED)
                    for m in MODELS
                },
                "evaluation": config["datasets"][COMPARE_DATASET]["evaluation"],
                "postprocessing": config["postprocessing"],
                "distance_penalty_mm": config["evaluation"]["distance_penalty_mm"],
                **PREDICTION_READING,
            },
        script:
            "../../scripts/compare_summary.py"

    TARGETS += [f"{R}/summary.json"]
