"""Rule evaluate: per-case and per-lesion metric tables of one model's test predictions on one data set."""

from lesionbench.evaluation import Settings, evaluate_to_files
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    sm = snakemake
    settings = Settings.from_config(
        sm.params.evaluation,
        sm.params.postprocessing,
        sm.params.distance_penalty_mm,
        surface_definition=sm.params.surface_definition,
        **sm.params.reading,
    )
    evaluate_to_files(
        sm.input.predictions,
        sm.input.prepared,
        sm.input.split,
        sm.output.per_case,
        sm.output.per_lesion,
        dataset=sm.wildcards.dataset,
        model=sm.wildcards.model,
        seed=int(sm.wildcards.seed),
        settings=settings,
        lesions_csv=sm.input.lesions,
        provenance_json=sm.output.provenance,
    )
