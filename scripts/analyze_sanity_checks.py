"""Rule sanity_checks: the seven failure modes of the study protocol, checked per data set."""
from lesionbench.runtime import rule_logging
from lesionbench.stats import pipeline

with rule_logging(snakemake.log[0]):
    sm = snakemake
    pipeline.write_sanity_checks(pipeline.StudyInputs.from_snakemake(sm.input), list(sm.input.provenance),
                                 sm.input.small, sm.output.table, sm.params.claim)
