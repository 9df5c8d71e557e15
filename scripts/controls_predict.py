"""Rule controls_predictions: calibrate a data set's controls and write their predictions and calibration."""

from lesionbench.controls import ControlSettings, build_dataset_controls
from lesionbench.io.atomic import write_csv
from lesionbench.runtime import rule_logging

with rule_logging(snakemake.log[0]):
    sm = snakemake
    settings = ControlSettings.from_config(sm.params.controls)
    folders = dict(zip(sm.params.names, sm.output.predictions))
    table = build_dataset_controls(
        sm.input.prepared,
        sm.input.split,
        folders,
        dataset=sm.wildcards.dataset,
        settings=settings,
        min_component_voxels=int(sm.params.postprocessing.get("min_component_voxels", 0)),
        threshold=float(sm.params.postprocessing.get("threshold", 0.5)),
    )
    write_csv(table, sm.output.calibration)
