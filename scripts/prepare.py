"""Rule prepare: binarize masks, normalize, optionally resize, store prepared cases."""

from lesionbench.data import stage
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    stage.prepare(
        snakemake.wildcards.dataset,
        snakemake.params.prepare,
        snakemake.input.manifest,
        snakemake.input.split,
        snakemake.input.raw,
        snakemake.output.prepared,
        snakemake.output.cases,
    )
