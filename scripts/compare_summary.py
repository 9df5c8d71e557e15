"""Rule compare_summary: summary/{dataset}.json of an evaluation-only run."""

from lesionbench.compare.summary import write_summary
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    sm = snakemake
    write_summary(sm.wildcards.dataset, sm.params.models, sm.input.per_case, sm.output.summary, sm.params.settings)
