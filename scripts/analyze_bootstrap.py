"""Rule bootstrap_directional_robustness: paired case bootstrap of every model pair, metric and stratum."""

from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):
    pipeline.write_robustness(
        pipeline.StudyInputs.from_snakemake(snakemake.input),
        snakemake.output.table,
        snakemake.params.statistics,
        snakemake.params.claim,
    )
