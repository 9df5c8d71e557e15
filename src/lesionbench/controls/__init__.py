"""Positive and negative controls: simulated models with known failure modes, tied under Dice.

Built from the test-split reference masks (``perturbations``: what each failure mode does to one lesion;
``build``: a data set's control predictions with a shared detection behaviour; ``calibrate``: each control's
strength set to a target overall Dice; ``dataset``: config, calibration and writing the predictions).
docs/controls.md explains the design and the geometry the controls must reproduce.
"""

from .build import ControlBuilder, ControlError, ControlSpec, ReferenceCase
from .calibrate import Calibration, calibrate
from .dataset import ControlSettings, build_dataset_controls, control_names, control_specs
from .perturbations import PERTURBATIONS, SEEDED, Lesion, perturb

__all__ = [
    "PERTURBATIONS",
    "SEEDED",
    "Calibration",
    "ControlBuilder",
    "ControlError",
    "ControlSettings",
    "ControlSpec",
    "Lesion",
    "ReferenceCase",
    "build_dataset_controls",
    "calibrate",
    "control_names",
    "control_specs",
    "perturb",
]
