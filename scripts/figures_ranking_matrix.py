"""Rule figure_ranking_reversal_matrix: Kendall tau and Dice-leader rank per data set x stratum x metric."""

import pandas as pd

from lesionbench.plots import ranking
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    ranking.ranking_reversal_matrix(pd.read_csv(snakemake.input.ranking), snakemake.output.figure)
