"""Rule acquire: generate, download and verify, or check the source files of one data set."""

from pathlib import Path

from lesionbench.data import stage
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    stage.acquire(
        snakemake.wildcards.dataset,
        snakemake.params.acquire,
        Path(snakemake.output.raw),
        Path(snakemake.output.manifest),
    )
