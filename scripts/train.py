"""Rule train: one model of one data set with one seed (lesionbench.training.train)."""
from pathlib import Path

from lesionbench.runtime import rule_logging
from lesionbench.training import train

with rule_logging(snakemake.log[0]) as log:  # noqa: F821
    summary = train(snakemake.input.prepared, snakemake.input.split, Path(snakemake.output.best).parent,  # noqa: F821
                    snakemake.wildcards.model, snakemake.params.model, snakemake.params.training,  # noqa: F821
                    seed=snakemake.params.seed, device=snakemake.params.device,  # noqa: F821
                    dataset=snakemake.wildcards.dataset, threads=snakemake.threads,  # noqa: F821
                    inference=snakemake.params.inference)  # noqa: F821
    log.info("done: %s", summary)
