"""Rule size_stratified_metrics: lesion-level metrics per size quartile, and the Q1 (small-lesion) table."""

from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):
    pipeline.write_size_stratified(
        pipeline.StudyInputs.from_snakemake(snakemake.input),
        snakemake.output.stratified,
        snakemake.output.small,
        snakemake.params.claim,
    )
