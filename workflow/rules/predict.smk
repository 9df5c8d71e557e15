# Stage rules: predict. The best checkpoint of each data set x model x seed on every test case, through the
# shared postprocessing, into one folder per seed the evaluation reads (PNG for 2D, NIfTI for 3D). One job
# per data set x model predicts all its seeds: the process start (torch, smp) is paid once, not per seed.


rule predict:
    input:
        best=[f"{R}/models/{{dataset}}/{{model}}/seed{seed}/best.pt" for seed in SEEDS],
        prepared=f"{R}/data/{{dataset}}/prepared",
        split=f"{R}/data/{{dataset}}/split.csv",
        code=script_code("predict.py"),
    output:
        predictions=[directory(f"{R}/predictions/{{dataset}}/{{model}}/seed{seed}") for seed in SEEDS],
    log:
        f"{R}/logs/predict/{{dataset}}/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/predict/{{dataset}}/{{model}}.tsv"
    wildcard_constraints:
        model="|".join(TRAINED_MODELS),  # external models are never trained or predicted here
    conda:
        "../../envs/lesionbench.yaml"
    threads: lambda w: config["datasets"][w.dataset].get("training", {}).get("num_threads", THREADS)
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,
    params:
        postprocessing=config["postprocessing"],
        inference=config.get("inference", {}),
        device=config["device"],
    script:
        "../../scripts/predict.py"
