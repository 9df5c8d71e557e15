"""The controls of one data set, end to end: read the test references, calibrate, write the predictions.

``control_specs`` turns the ``controls`` config block into the simulated models; ``build_dataset_controls``
reads the prepared test cases, calibrates every control (``calibrate``), writes each control's predictions
like any model's (``{out}/{control}/seed0/{case}.png|.nii.gz``, ``lesionbench.io.predictions``) and returns
the calibration table (``CALIBRATION_COLUMNS``).

Negative control: two replicates (``replicate_a``, ``replicate_b``) of one seed-dependent perturbation with
seeds ``seed + 1`` and ``seed + 2``, each calibrated to the same overall Dice like every control. Reusing one
strength for both would not tie them: on the small default data sets the draw of directions alone moves the
overall Dice at a fixed strength by 0.002-0.03 (an elongated lesion loses more when moved across its long
axis), a real difference the negative control must not contain. The calibrated strengths differ by that
seed-to-seed noise only (the calibration table shows both).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..evaluation.folder import test_case_ids
from ..io.atomic import atomic_dir
from ..io.cases import load_case, read_meta
from ..io.predictions import write_prediction
from ..io.tables import read_table
from .build import ControlBuilder, ControlError, ControlSpec, ReferenceCase
from .calibrate import calibrate
from .perturbations import SEEDED

log = logging.getLogger(__name__)

NEGATIVE_NAMES = ("replicate_a", "replicate_b")
CONTROL_SEED = 0  # the seed folder of every control's predictions and metric tables (controls do not train)
CALIBRATION_COLUMNS = [
    "dataset",
    "control",
    "role",
    "perturbation",
    "seed",
    "strength_mm",
    "dice",
    "dice_target",
    "dice_error",
    "within_tolerance",
    "n_test_cases",
    "n_lesions",
    "n_dropped",
    "n_undetectable",
    "evaluations",
]


@dataclass(frozen=True)
class ControlSettings:
    """The ``controls`` config block (defaults in the config schema)."""

    dice_target: float
    tolerance: float
    drop_fraction: float
    seed: int
    perturbations: tuple[str, ...]
    negative: str

    @classmethod
    def from_config(cls, block: dict) -> ControlSettings:
        try:
            return cls(
                dice_target=float(block["dice_target"]),
                tolerance=float(block["tolerance"]),
                drop_fraction=float(block["drop_fraction"]),
                seed=int(block["seed"]),
                perturbations=tuple(block["perturbations"]),
                negative=str(block["negative"]),
            )
        except KeyError as exc:
            raise ControlError(f"config controls block lacks {exc.args[0]!r}") from None


def control_specs(settings: ControlSettings) -> list[ControlSpec]:
    """Positive controls (one per perturbation, named after it), then the negative-control pair."""
    if len(set(settings.perturbations)) != len(settings.perturbations) or not settings.perturbations:
        raise ControlError(f"controls.perturbations must list distinct perturbations, got {settings.perturbations}")
    if settings.negative not in SEEDED:
        raise ControlError(
            f"controls.negative must be a perturbation that depends on its seed ({', '.join(SEEDED)}), "
            f"got {settings.negative!r}: replicates of a seed-free perturbation would be identical"
        )
    specs = [ControlSpec(p, p, settings.seed, "positive") for p in settings.perturbations]
    specs += [
        ControlSpec(name, settings.negative, settings.seed + i, "negative")
        for i, name in enumerate(NEGATIVE_NAMES, start=1)
    ]
    return specs


def control_names(block: dict) -> dict:
    """{"positive": [...], "negative": [...]} model names of the controls configured in ``block``."""
    specs = control_specs(ControlSettings.from_config(block))
    return {role: [s.name for s in specs if s.role == role] for role in ("positive", "negative")}


def calibrate_controls(builder: ControlBuilder, specs: list[ControlSpec], settings: ControlSettings) -> dict:
    """{control name: Calibration}, each control calibrated on its own."""
    return {spec.name: calibrate(builder, spec, settings.dice_target, settings.tolerance) for spec in specs}


def build_dataset_controls(
    prepared: str | os.PathLike,
    split_csv: str | os.PathLike,
    outputs: dict,
    *,
    dataset: str,
    settings: ControlSettings,
    min_component_voxels: int,
    threshold: float,
) -> pd.DataFrame:
    """Calibrate every control of a data set and write its predictions.

    ``outputs`` maps each control name to its predictions folder (written atomically, whole or not at all).
    Returns the calibration table, one row per control.
    """
    start = time.monotonic()
    specs = control_specs(settings)
    names = [s.name for s in specs]
    if sorted(outputs) != sorted(names):
        raise ControlError(
            f"data set {dataset!r}: output folders are given for controls {sorted(outputs)}, but the "
            f"configured controls are {names}"
        )
    ids = test_case_ids(split_csv)
    cases, metas = [], []
    for cid in ids:
        case = load_case(prepared, cid, image=False)
        cases.append(ReferenceCase(cid, case.mask, case.spacing, case.ignore))
        metas.append(read_meta(prepared, cid))
    builder = ControlBuilder(
        dataset,
        cases,
        settings.drop_fraction,
        settings.seed,
        min_component_voxels=min_component_voxels,
        threshold=threshold,
    )
    calibrated = calibrate_controls(builder, specs, settings)
    rows = []
    for spec in specs:
        cal = calibrated[spec.name]
        with atomic_dir(Path(outputs[spec.name])) as tmp:
            for meta, pred in zip(metas, builder.predictions(spec, cal.strength_mm)):
                write_prediction(pred, meta, tmp)
        rows.append(
            {
                "dataset": dataset,
                "control": spec.name,
                "role": spec.role,
                "perturbation": spec.perturbation,
                "seed": spec.seed,
                "strength_mm": cal.strength_mm,
                "dice": cal.dice,
                "dice_target": settings.dice_target,
                "dice_error": cal.dice - settings.dice_target,
                "within_tolerance": cal.within_tolerance,
                "n_test_cases": len(cases),
                "n_lesions": builder.n_lesions,
                "n_dropped": len(builder.dropped),
                "n_undetectable": len(builder.unchanged),
                "evaluations": cal.evaluations,
            }
        )
    log.info("%s: %d controls calibrated and written in %.1f s", dataset, len(specs), time.monotonic() - start)
    return pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)


def gather_calibration(paths) -> pd.DataFrame:
    """The per-data-set calibration tables in one, sorted by data set and control order."""
    frames = [read_table(p, CALIBRATION_COLUMNS, error=ControlError) for p in paths]
    if not frames:
        raise ControlError("no calibration tables to gather")
    table = pd.concat(frames, ignore_index=True)[CALIBRATION_COLUMNS]
    return table.sort_values(["dataset", "role", "control"], ascending=[True, False, True], kind="stable").reset_index(
        drop=True
    )
