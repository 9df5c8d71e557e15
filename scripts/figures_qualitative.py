"""Rule figure_qualitative_examples: Q1 lesions with near-equal Dice and the largest HD95 gap, overlaid."""
from lesionbench.plots import qualitative
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]) as log:  # noqa: F821
    i = snakemake.input  # noqa: F821
    examples = qualitative.qualitative_figure(
        i.per_case, i.per_lesion, i.lesions, i.quartiles, i.prepared,
        {tuple(key): path for key, path in zip(snakemake.params.prediction_keys, i.predictions)},  # noqa: F821
        snakemake.output.figure, snakemake.params.examples_per_dataset,  # noqa: F821
        snakemake.params.dice_tolerance, threshold=snakemake.params.threshold)  # noqa: F821
    for ex in examples:
        log.info("example %s/%s lesion %d: %s vs %s", ex.dataset, ex.case_id, ex.lesion_id, ex.model_a, ex.model_b)
