"""Rule lesions: one row per reference lesion, and the size-stratum edges (rule stratification.edges)."""
from lesionbench.data import stage
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):  # noqa: F821
    stage.lesions(snakemake.wildcards.dataset, snakemake.input.prepared, snakemake.input.split,  # noqa: F821
                  snakemake.output.lesions, snakemake.output.quartiles,  # noqa: F821
                  edge_rule=snakemake.params.edges)  # noqa: F821
