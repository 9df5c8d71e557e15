"""Rule dataset_summary: cases and lesions per split (and what the prepare resize cost), Q1 bound, per data set."""

from lesionbench.data.steps import summary
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    summary.run(
        snakemake.params.names,
        snakemake.params.datasets,
        snakemake.input.splits,
        snakemake.input.lesions,
        snakemake.input.quartiles,
        snakemake.output.summary,
        cases_paths=snakemake.input.cases,
    )
