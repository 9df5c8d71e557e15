"""Rule figure_training_curves: loss, validation Dice and learning rate per epoch of one data set."""

from lesionbench.plots import training
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    training.training_curves(
        training.read_train_logs(snakemake.input.logs), snakemake.wildcards.dataset, snakemake.output.figure
    )
