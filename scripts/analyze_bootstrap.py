"""Rule bootstrap_directional_robustness: paired case bootstrap of every model pair, metric and stratum."""
from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):  # noqa: F821
    pipeline.write_robustness(pipeline.StudyInputs.from_snakemake(snakemake.input),  # noqa: F821
                              snakemake.output.table, snakemake.params.statistics,  # noqa: F821
                              snakemake.params.claim)  # noqa: F821
