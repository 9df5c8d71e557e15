"""Rule ranking_reversals: model order under Dice vs each boundary metric, per data set and stratum."""
from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):  # noqa: F821
    pipeline.write_ranking(pipeline.StudyInputs.from_snakemake(snakemake.input),  # noqa: F821
                           snakemake.output.ranking, snakemake.output.summary,  # noqa: F821
                           snakemake.params.claim)  # noqa: F821
