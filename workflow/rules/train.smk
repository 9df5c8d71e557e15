# Stage rules: train. One job per data set x model x seed; the protocol is the global `training` block
# merged with the data set's `training` overrides, nested blocks key by key (lesionbench.training.
# resolve_training_config then fills the defaults and validates). Params carry only what decides the
# weights, so e.g. a new postprocessing threshold or thread count never re-trains.


MODEL_DIR = f"{R}/models/{{dataset}}/{{model}}/seed{{seed}}"
THREADS = int(config["training"].get("num_threads", 1))  # torch threads per job unless a data set overrides


rule train:
    input:
        prepared=f"{R}/data/{{dataset}}/prepared",
        split=f"{R}/data/{{dataset}}/split.csv",
        cases=f"{R}/data/{{dataset}}/cases.csv",
        code=script_code("train.py"),
    output:
        best=f"{MODEL_DIR}/best.pt",
        last=f"{MODEL_DIR}/last.pt",
        log=f"{MODEL_DIR}/train_log.csv",
        config=f"{MODEL_DIR}/config.json",
    log:
        f"{R}/logs/train/{{dataset}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{dataset}}/{{model}}/seed{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(TRAINED_MODELS),  # external models are never trained or predicted here
    conda:
        "../../envs/lesionbench.yaml"
    threads: lambda w: config["datasets"][w.dataset].get("training", {}).get("num_threads", THREADS)
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    params:
        model=lambda w: config["models"][w.model],
        training=lambda w: {
            k: ({**config["training"].get(k, {}), **v} if isinstance(v, dict) else v)
            for k, v in {**config["training"], **config["datasets"][w.dataset].get("training", {})}.items()
            if k != "num_threads"
        },
        # validation predicts as the predict rule does; tiles per pass never change a result
        inference={k: v for k, v in config.get("inference", {}).items() if k != "batch_size"},
        seed=lambda w: int(w.seed),
        device=config["device"],
    script:
        "../../scripts/train.py"


# Training curves exist even before evaluation pulls the predictions.
TARGETS += expand(f"{MODEL_DIR}/train_log.csv", dataset=DATASETS, model=TRAINED_MODELS, seed=SEEDS)
