"""Rule train: one model of one data set with one seed (lesionbench.training.train)."""

from pathlib import Path

from lesionbench.runtime import rule_logging
from lesionbench.training import train

with rule_logging(snakemake.log[0]) as log:
    summary = train(
        snakemake.input.prepared,
        snakemake.input.split,
        Path(snakemake.output.best).parent,
        snakemake.wildcards.model,
        snakemake.params.model,
        snakemake.params.training,
        seed=snakemake.params.seed,
        device=snakemake.params.device,
        dataset=snakemake.wildcards.dataset,
        threads=snakemake.threads,
        inference=snakemake.params.inference,
    )
    log.info("done: %s", summary)
