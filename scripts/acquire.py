"""Rule acquire: generate, download and verify, or check the source files of one data set."""

from pathlib import Path

from lesionbench.data.steps import acquire
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    acquire.run(
        snakemake.wildcards.dataset,
        snakemake.params.acquire,
        Path(snakemake.output.raw),
        Path(snakemake.output.manifest),
    )
