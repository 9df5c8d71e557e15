"""Rule split: deterministic train/val/test assignment from the raw manifest."""

from lesionbench.data.steps import split
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    split.run(snakemake.wildcards.dataset, snakemake.params.split, snakemake.input.manifest, snakemake.output.split)
