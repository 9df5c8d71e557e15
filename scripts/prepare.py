"""Rule prepare: binarize masks, normalize, optionally resize, store prepared cases."""

from lesionbench.data.steps import prepare
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    prepare.run(
        snakemake.wildcards.dataset,
        snakemake.params.prepare,
        snakemake.input.manifest,
        snakemake.input.split,
        snakemake.input.raw,
        snakemake.output.prepared,
        snakemake.output.cases,
        threads=snakemake.threads,
    )
