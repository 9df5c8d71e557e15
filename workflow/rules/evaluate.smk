# Evaluation stage: per-case and per-lesion metric tables of every data set x model x seed.
# Reads only a predictions folder and the prepared references, so predictions from any tool can enter.
# Predictions are postprocessed again (idempotent), so external predictions get identical treatment.
# No target is added here: the statistics stage requests the metric tables it needs.


rule evaluate:
    input:
        predictions=lambda w: predictions_dir(w.dataset, w.model, w.seed),
        prepared=f"{R}/data/{{dataset}}/prepared",
        split=f"{R}/data/{{dataset}}/split.csv",
        lesions=f"{R}/data/{{dataset}}/lesions.csv",
        code=script_code("evaluate.py"),
    output:
        per_case=f"{R}/metrics/{{dataset}}/{{model}}/seed{{seed}}/per_case.csv",
        per_lesion=f"{R}/metrics/{{dataset}}/{{model}}/seed{{seed}}/per_lesion.csv",
        # metric-code hash and evaluation settings of these tables (compared by the sanity checks)
        provenance=f"{R}/metrics/{{dataset}}/{{model}}/seed{{seed}}/provenance.json",
    log:
        f"{R}/logs/evaluate/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    threads: 1
    params:
        evaluation=lambda w: config["datasets"][w.dataset]["evaluation"],
        postprocessing=config["postprocessing"],
        distance_penalty_mm=config["evaluation"].get("distance_penalty_mm"),
        surface_definition=config["evaluation"]["surface_definition"],
        reading=PREDICTION_READING,
    script:
        "../../scripts/evaluate.py"
