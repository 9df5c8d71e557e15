"""Rule overall_metrics: data set x model x metric over all test cases, with bootstrap CIs."""

from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):
    pipeline.write_overall_metrics(
        pipeline.StudyInputs.from_snakemake(snakemake.input), snakemake.output.table, snakemake.params.statistics
    )
