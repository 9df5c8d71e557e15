"""Rule compare_summary: summary.json and metrics/{model}/ tables of an evaluation-only run."""

from lesionbench.compare.summary import write_summary
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    sm = snakemake
    write_summary(
        sm.params.dataset,
        sm.params.models,
        sm.input.per_case,
        sm.input.per_lesion,
        sm.output.summary,
        list(zip(sm.output.per_case, sm.output.per_lesion)),
        sm.params.settings,
    )
