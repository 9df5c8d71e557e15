"""Rule lesions: one row per reference lesion, and the size-stratum edges (rule stratification.edges)."""

from lesionbench.data.steps import lesions
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    lesions.run(
        snakemake.wildcards.dataset,
        snakemake.input.prepared,
        snakemake.input.split,
        snakemake.output.lesions,
        snakemake.output.quartiles,
        edge_rule=snakemake.params.edges,
        threads=snakemake.threads,
    )
