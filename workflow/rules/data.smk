# Data stage: acquire -> split -> prepare -> lesions -> validate_data -> dataset_summary.
# The split is computed from the raw manifest (case ids only) so that `max_cases` selects cases before
# the expensive preparation; each rule receives only the config keys it depends on (params trigger).

ACQUIRE_KEYS = ("source", "path", "images", "synthetic", "download", "labels", "spacing")
PREPARE_KEYS = ("source", "path", "synthetic", "labels", "spacing", "preprocessing")
# lesions and validate_data label every reference mask, a case per thread (lesionbench.parallel); prepare
# does the same for evaluation-only data sets (reference masks only, so two cases fit in its memory).
CASE_THREADS = 2


rule acquire:
    input:
        code=source_code("acquire.py"),
    output:
        raw=directory(f"{R}/data/{{dataset}}/raw"),
        manifest=f"{R}/data/{{dataset}}/raw_manifest.csv",
    log:
        f"{R}/logs/acquire/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/acquire/{{dataset}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        acquire=select_keys(*ACQUIRE_KEYS),
    script:
        "../../scripts/acquire.py"


rule split:
    input:
        manifest=f"{R}/data/{{dataset}}/raw_manifest.csv",
        code=script_code("split.py"),
    output:
        split=f"{R}/data/{{dataset}}/split.csv",
    log:
        f"{R}/logs/split/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/split/{{dataset}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        split=lambda w: config["datasets"][w.dataset]["split"],
    script:
        "../../scripts/split.py"


rule prepare:
    input:
        raw=f"{R}/data/{{dataset}}/raw",
        manifest=f"{R}/data/{{dataset}}/raw_manifest.csv",
        split=f"{R}/data/{{dataset}}/split.csv",
        code=source_code("prepare.py"),
    output:
        prepared=directory(f"{R}/data/{{dataset}}/prepared"),
        cases=f"{R}/data/{{dataset}}/cases.csv",
    log:
        f"{R}/logs/prepare/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/prepare/{{dataset}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    threads: lambda w: CASE_THREADS if w.dataset in EVALUATION_ONLY else 1
    resources:
        mem_mb=4000,
    params:
        prepare=select_keys(*PREPARE_KEYS),
    script:
        "../../scripts/prepare.py"


rule lesions:
    input:
        prepared=f"{R}/data/{{dataset}}/prepared",
        split=f"{R}/data/{{dataset}}/split.csv",
        code=script_code("lesions.py"),
    output:
        lesions=f"{R}/data/{{dataset}}/lesions.csv",
        quartiles=f"{R}/data/{{dataset}}/quartiles.csv",
    log:
        f"{R}/logs/lesions/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/lesions/{{dataset}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    threads: CASE_THREADS
    params:
        edges=config["stratification"]["edges"],
    script:
        "../../scripts/lesions.py"


rule validate_data:
    input:
        prepared=f"{R}/data/{{dataset}}/prepared",
        split=f"{R}/data/{{dataset}}/split.csv",
        cases=f"{R}/data/{{dataset}}/cases.csv",
        lesions=f"{R}/data/{{dataset}}/lesions.csv",
        quartiles=f"{R}/data/{{dataset}}/quartiles.csv",
        code=script_code("validate_data.py"),
    output:
        report=f"{R}/data/{{dataset}}/validation.json",
    log:
        f"{R}/logs/validate_data/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/validate_data/{{dataset}}.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    threads: CASE_THREADS
    params:
        all_test=lambda w: w.dataset in EVALUATION_ONLY,
    script:
        "../../scripts/validate_data.py"


rule dataset_summary:
    input:
        validations=expand(f"{R}/data/{{dataset}}/validation.json", dataset=DATASETS),
        splits=expand(f"{R}/data/{{dataset}}/split.csv", dataset=DATASETS),
        cases=expand(f"{R}/data/{{dataset}}/cases.csv", dataset=DATASETS),
        lesions=expand(f"{R}/data/{{dataset}}/lesions.csv", dataset=DATASETS),
        quartiles=expand(f"{R}/data/{{dataset}}/quartiles.csv", dataset=DATASETS),
        code=script_code("dataset_summary.py"),
    output:
        summary=report(f"{R}/dataset_summary.csv", caption="../report/dataset_summary.rst", category="Data sets"),
    log:
        f"{R}/logs/dataset_summary.log",
    benchmark:
        f"{R}/benchmarks/dataset_summary.tsv"
    conda:
        "../../envs/lesionbench.yaml"
    params:
        names=DATASETS,
        datasets={
            n: {"modality": config["datasets"][n]["modality"], "all_test": n in EVALUATION_ONLY} for n in DATASETS
        },
    script:
        "../../scripts/dataset_summary.py"


TARGETS += [f"{R}/dataset_summary.csv"]
