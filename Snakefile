# lesionbench: do segmentation models tied under Dice differ in boundary quality on small lesions?
# Thin entry point: validate the config, include one rule file per stage, collect the final targets.
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")


# The default run; any --configfile replaces it (list several to layer them, e.g.
# `--configfile config/config.yaml my_overrides.yaml`), and --config key=value applies on top.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# This file's folder, also when another Snakefile includes it (workflow/Snakefile, a Snakemake module).
WORKFLOW_ROOT = Path(str(workflow.current_basedir))
# The library of this workflow copy: src/ in a checkout; a copy installed with the package lives in
# lesionbench/workflow_files/ and runs the package around it (lesionbench.resources).
LIBRARY = WORKFLOW_ROOT / "src" if (WORKFLOW_ROOT / "src" / "lesionbench").is_dir() else WORKFLOW_ROOT.parent.parent
sys.path.insert(0, str(LIBRARY))
# The library checks the config (no torch import: this runs on every call).
from lesionbench.config_check import check_config_keys, check_run_config

check_config_keys(config, WORKFLOW_ROOT / "workflow/schemas/config.schema.yaml", workflow.configfiles)
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="[A-Za-z0-9_-]+",
    seed=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/compare.smk"


rule all:
    default_target: True
    input:
        TARGETS,
