"""Rule model_comparisons: paired Wilcoxon tests with Holm correction, three ranking schemes, rank stability."""
from lesionbench.runtime import rule_logging
from lesionbench.stats import comparisons, pipeline

with rule_logging(snakemake.log[0]):  # noqa: F821
    comparisons.write_comparisons(pipeline.StudyInputs.from_snakemake(snakemake.input),  # noqa: F821
                                  snakemake.output.pairwise, snakemake.output.schemes,  # noqa: F821
                                  snakemake.output.stability, snakemake.params.statistics,  # noqa: F821
                                  snakemake.params.claim)  # noqa: F821
