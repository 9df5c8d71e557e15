"""Rule controls_calibration: the calibrated strength and Dice of every control of every data set, one table."""

from lesionbench.controls.dataset import gather_calibration
from lesionbench.io.atomic import write_csv
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    write_csv(gather_calibration(snakemake.input.tables), snakemake.output.table)
