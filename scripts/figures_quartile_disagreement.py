"""Rule figure_quartile_disagreement: spread among models per size quartile, per metric."""
import pandas as pd

from lesionbench.plots import comparison
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):  # noqa: F821
    comparison.quartile_disagreement(pd.read_csv(snakemake.input.stratified),  # noqa: F821
                                     snakemake.output.figure)  # noqa: F821
