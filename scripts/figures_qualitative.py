"""Rule figure_qualitative_examples: Q1 lesions with near-equal Dice and the largest HD95 gap, overlaid."""

from lesionbench.plots import qualitative
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]) as log:
    i = snakemake.input
    examples = qualitative.qualitative_figure(
        i.per_case,
        i.per_lesion,
        i.lesions,
        i.quartiles,
        i.prepared,
        {tuple(key): path for key, path in zip(snakemake.params.prediction_keys, i.predictions)},
        snakemake.output.figure,
        snakemake.params.examples_per_dataset,
        snakemake.params.dice_tolerance,
        threshold=snakemake.params.threshold,
    )
    for ex in examples:
        log.info(
            "example %s/%s lesion %d: %s vs %s", ex.dataset, ex.case_id, ex.lesion_id, ex.pair_first, ex.pair_second
        )
