"""Rule figure_ranking_stability: blob plot of the share of resamples in which each model holds each rank."""

import pandas as pd

from lesionbench.plots import stability
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    stability.ranking_stability_figure(pd.read_csv(snakemake.input.stability), snakemake.output.figure)
