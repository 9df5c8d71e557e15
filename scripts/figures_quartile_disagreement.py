"""Rule figure_quartile_disagreement: spread among models per size quartile, per metric."""

import pandas as pd

from lesionbench.plots import comparison
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    comparison.quartile_disagreement(pd.read_csv(snakemake.input.stratified), snakemake.output.figure)
