"""Rule model_comparisons: paired Wilcoxon tests with Holm correction, three ranking schemes, rank stability."""

from lesionbench.runtime import rule_logging
from lesionbench.stats import comparisons, pipeline

with rule_logging(snakemake.log[0]):
    comparisons.write_comparisons(
        pipeline.StudyInputs.from_snakemake(snakemake.input),
        snakemake.output.pairwise,
        snakemake.output.schemes,
        snakemake.output.stability,
        snakemake.params.statistics,
        snakemake.params.claim,
    )
