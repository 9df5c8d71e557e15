"""Rule claim_check: the verdict on the study's five expected findings, per data set and pooled."""

from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):
    sm = snakemake
    pipeline.write_claim_check(
        pipeline.StudyInputs.from_snakemake(sm.input),
        list(sm.input.prepared),
        sm.input.summary,
        sm.input.sanity,
        sm.output.table,
        sm.params.claim,
    )
