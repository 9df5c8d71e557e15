"""Rule study_summary: the study's headline table and the data-set table, per data set and pooled."""
from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):
    sm = snakemake
    pipeline.write_study_summary(pipeline.StudyInputs.from_snakemake(sm.input), sm.output.summary,
                                 sm.output.datasets, sm.params.statistics, sm.params.claim)
