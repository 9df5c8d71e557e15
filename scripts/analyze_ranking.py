"""Rule ranking_reversals: model order under Dice vs each boundary metric, per data set and stratum."""

from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):
    pipeline.write_ranking(
        pipeline.StudyInputs.from_snakemake(snakemake.input),
        snakemake.output.ranking,
        snakemake.output.summary,
        snakemake.params.claim,
    )
