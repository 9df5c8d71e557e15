"""Rule predict: postprocessed predictions of every test case, for each seed of one data set x model
(lesionbench.inference.predict_dataset, one checkpoint and one output folder per seed)."""

from lesionbench.inference import predict_dataset
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]) as log:
    for best, out_dir in zip(snakemake.input.best, snakemake.output.predictions, strict=True):
        written = predict_dataset(
            best,
            snakemake.input.prepared,
            snakemake.input.split,
            out_dir,
            snakemake.params.postprocessing,
            device=snakemake.params.device,
            threads=snakemake.threads,
            inference=snakemake.params.inference,
        )
        log.info("wrote %d predictions to %s", len(written), out_dir)
