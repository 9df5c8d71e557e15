"""Rule split: deterministic train/val/test assignment from the raw manifest."""

from lesionbench.data import stage
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    stage.split(snakemake.wildcards.dataset, snakemake.params.split, snakemake.input.manifest, snakemake.output.split)
