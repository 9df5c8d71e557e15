"""Rule validate_data: checkpoint checks of one prepared data set; fails naming the bad case."""

from lesionbench.data.steps import validate
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    validate.run(
        snakemake.wildcards.dataset,
        snakemake.input.prepared,
        snakemake.input.split,
        snakemake.input.cases,
        snakemake.input.lesions,
        snakemake.input.quartiles,
        snakemake.output.report,
        all_test=snakemake.params.all_test,
        threads=snakemake.threads,
    )
