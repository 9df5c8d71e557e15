"""Rule predict: postprocessed predictions of every test case (lesionbench.inference.predict_dataset)."""
from lesionbench.inference import predict_dataset
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]) as log:  # noqa: F821
    written = predict_dataset(snakemake.input.best, snakemake.input.prepared, snakemake.input.split,  # noqa: F821
                              snakemake.output.predictions, snakemake.params.postprocessing,  # noqa: F821
                              device=snakemake.params.device, threads=snakemake.threads,  # noqa: F821
                              inference=snakemake.params.inference)  # noqa: F821
    log.info("wrote %d predictions to %s", len(written), snakemake.output.predictions)  # noqa: F821
