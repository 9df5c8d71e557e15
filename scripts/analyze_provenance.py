"""Rule provenance: metric settings, package versions, git commit and config hash of the results."""
from lesionbench.runtime import rule_logging
from lesionbench.stats.provenance import write_study_provenance

with rule_logging(snakemake.log[0]):
    sm = snakemake
    write_study_provenance(list(sm.input.provenance), dict(sm.params.config), sm.output.record)
