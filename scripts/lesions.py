"""Rule lesions: one row per reference lesion, and the size-stratum edges (rule stratification.edges)."""

from lesionbench.data import stage
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    stage.lesions(
        snakemake.wildcards.dataset,
        snakemake.input.prepared,
        snakemake.input.split,
        snakemake.output.lesions,
        snakemake.output.quartiles,
        edge_rule=snakemake.params.edges,
        threads=snakemake.threads,
    )
