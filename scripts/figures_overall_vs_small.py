"""Rule figure_overall_vs_small_lesion: spread among models over all cases vs on Q1 lesions."""

import pandas as pd

from lesionbench.plots import comparison
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    comparison.overall_vs_small_lesion(
        pd.read_csv(snakemake.input.overall), pd.read_csv(snakemake.input.small), snakemake.output.figure
    )
