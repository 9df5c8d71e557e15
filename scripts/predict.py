"""Rule predict: postprocessed predictions of every test case (lesionbench.inference.predict_dataset)."""

from lesionbench.inference import predict_dataset
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]) as log:
    written = predict_dataset(
        snakemake.input.best,
        snakemake.input.prepared,
        snakemake.input.split,
        snakemake.output.predictions,
        snakemake.params.postprocessing,
        device=snakemake.params.device,
        threads=snakemake.threads,
        inference=snakemake.params.inference,
    )
    log.info("wrote %d predictions to %s", len(written), snakemake.output.predictions)
