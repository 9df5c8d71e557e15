"""Evaluate a folder of predictions against the prepared references of a data set's test split.

Writes ``per_case.csv`` and ``per_lesion.csv`` (docs/contracts.md). Every test case is evaluated; missing
prediction files are an error listing every one (or, with ``missing_as_empty``, scored as empty predictions
and flagged ``missing_prediction``); files matching no test case are warned about and ignored. How a
prediction file is read (binary, label map, probability map) is ``lesionbench.io.predictions``. Metrics
follow ``lesionbench.metrics`` (docs/metrics.md).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import write_csv
from ..io.cases import load_case, read_meta
from ..io.predictions import PredictionError, find_prediction, prediction_files, read_prediction
from ..io.tables import read_table
from ..metrics.case import CASE_COLUMNS, LESION_COLUMNS, evaluate_case
from ..metrics.matching import check_dilation
from ..metrics.surface import check_mm, check_surface_definition, check_tolerance

log = logging.getLogger(__name__)

KEY_COLUMNS = ["dataset", "model", "seed", "case_id"]
PER_CASE_COLUMNS = KEY_COLUMNS + CASE_COLUMNS + ["missing_prediction"]
PER_LESION_COLUMNS = KEY_COLUMNS + LESION_COLUMNS
KIND_ORDER = {"reference": 0, "false_positive": 1}


class EvaluationError(ValueError):
    """An input of the evaluation is missing or inconsistent; the message names the file or case."""


@dataclass(frozen=True)
class Settings:
    """Evaluation parameters: contour tolerance tau and lesion dilation r (mm, per data set), the distance
    penalty (mm; None = image extent diagonal), the postprocessing of predictions, whether prediction files
    are probability maps (read as value >= threshold), whether a missing prediction is scored as empty, and
    the surface definition of the boundary metrics (``voxel`` or ``surfel``, docs/metrics.md)."""

    tolerance_mm: float
    dilation_mm: float
    penalty_mm: float | None = None
    threshold: float = 0.5
    min_component_voxels: int = 0
    probability_maps: bool = False
    missing_as_empty: bool = False
    surface_definition: str = "voxel"

    def __post_init__(self):
        checks = [
            ("contour_tolerance_mm", check_tolerance, self.tolerance_mm),
            ("lesion_dilation_mm", check_dilation, self.dilation_mm),
        ]
        if self.penalty_mm is not None:
            checks.append(("distance_penalty_mm", lambda v: check_mm(v, "distance penalty"), self.penalty_mm))
        checks.append(("surface_definition", check_surface_definition, self.surface_definition))
        for key, check, value in checks:
            try:
                check(value)  # the metrics decide the valid ranges; the schema states the same
            except ValueError as exc:
                raise EvaluationError(f"{key}: {exc}") from None
        if not (0 < float(self.threshold) < 1):
            raise EvaluationError(f"postprocessing threshold must lie in (0, 1), got {self.threshold!r}")
        if int(self.min_component_voxels) != self.min_component_voxels or self.min_component_voxels < 0:
            raise EvaluationError(
                f"min_component_voxels must be a non-negative integer, got {self.min_component_voxels!r}"
            )

    @classmethod
    def from_config(
        cls,
        dataset_evaluation: dict,
        postprocessing: dict,
        distance_penalty_mm=None,
        *,
        probability_maps: bool = False,
        missing_predictions: str = "error",
        surface_definition: str = "voxel",
    ) -> Settings:
        """From the data set's ``evaluation`` block, the ``postprocessing`` block and
        ``evaluation.distance_penalty_mm`` / ``probability_maps`` / ``missing_predictions`` /
        ``surface_definition`` of the config."""
        if missing_predictions not in ("error", "empty"):
            raise EvaluationError(f"missing_predictions must be 'error' or 'empty', got {missing_predictions!r}")
        try:
            return cls(
                tolerance_mm=float(dataset_evaluation["contour_tolerance_mm"]),
                dilation_mm=float(dataset_evaluation["lesion_dilation_mm"]),
                penalty_mm=None if distance_penalty_mm is None else float(distance_penalty_mm),
                threshold=float(postprocessing.get("threshold", 0.5)),
                min_component_voxels=int(postprocessing.get("min_component_voxels", 0)),
                probability_maps=bool(probability_maps),
                missing_as_empty=missing_predictions == "empty",
                surface_definition=surface_definition,
            )
        except KeyError as exc:
            raise EvaluationError(f"evaluation settings lack {exc.args[0]!r}") from exc


def _read_table(path, columns: list[str]) -> pd.DataFrame:
    return read_table(path, columns, error=EvaluationError)


def test_case_ids(split_csv: str | os.PathLike) -> list[str]:
    """The sorted case ids of the ``test`` split of a split.csv."""
    table = _read_table(split_csv, ["case_id", "split"])
    ids = sorted(table.loc[table["split"] == "test", "case_id"].astype(str))
    if not ids:
        raise EvaluationError(f"{split_csv}: no test cases")
    return ids


def model_and_seed(predictions: str | os.PathLike) -> tuple[str, int]:
    """Model name and seed read off a predictions folder ``.../{model}/seed{seed}`` (else: folder name, 0)."""
    path = Path(predictions).resolve()
    match = re.fullmatch(r"seed(\d+)", path.name)
    return (path.parent.name, int(match.group(1))) if match else (path.name, 0)


def _check_lesions(ev, case_id: str, table: pd.DataFrame | None, where) -> None:
    """The reference lesions found here must be those of lesions.csv (same ids, voxel counts and size
    fractions), so per_lesion rows join it."""
    if table is None:
        return
    rows = table[table["case_id"] == case_id].sort_values("lesion_id")
    ours = np.asarray(ev.lesion_voxels, np.int64)
    ids = rows["lesion_id"].to_numpy(np.int64)
    theirs = rows["voxels"].to_numpy(np.int64)
    same = len(ids) == len(ours) and np.array_equal(ids, np.arange(1, len(ours) + 1)) and np.array_equal(theirs, ours)
    if same and "size_fraction" in rows.columns:
        same = np.allclose(rows["size_fraction"].to_numpy(float), ev.lesion_fractions, rtol=1e-9, atol=1e-12)
    if not same:
        raise EvaluationError(
            f"case {case_id!r}: the reference lesions ({len(ours)} lesions, voxels {ours[:10].tolist()}) do not "
            f"match {where} ({len(ids)} rows, voxels {theirs[:10].tolist()}); rebuild lesions.csv from the "
            f"same prepared masks"
        )


def prediction_paths(predictions: str | os.PathLike, metas: dict) -> tuple[dict, list[str]]:
    """({case_id: prediction file}, [case ids without one]) for the cases of ``metas``; warns about files
    that match no case (they are ignored) and refuses two files for one case."""
    files = prediction_files(predictions)
    paths, missing = {}, []
    for cid, meta in metas.items():
        if cid in files:
            paths[cid] = find_prediction(predictions, meta, files)
        else:
            missing.append(cid)
    extra = sorted(set(files) - set(metas))
    if extra:
        log.warning(
            "%s: %d prediction file(s) match no test case and are ignored: %s",
            predictions,
            len(extra),
            ", ".join(p.name for c in extra for p in files[c]),
        )
    return paths, missing


def shared_labels(metas) -> dict | None:
    """The label settings predictions are read with: those recorded by the reference source (the same for
    every case), with the label values found over all cases; None for binary references."""
    found = [(m.get("source") or {}).get("labels") for m in metas]
    recorded: list[dict] = [r for r in found if r]
    if not recorded:
        return None
    values = sorted({int(v) for r in recorded for v in (r.get("values") or [])})
    return {**recorded[0], "values": values}


def evaluate_folder(
    predictions: str | os.PathLike,
    prepared: str | os.PathLike,
    case_ids: list[str],
    *,
    dataset: str,
    model: str,
    seed: int,
    settings: Settings,
    lesions: str | os.PathLike | pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-case and per-lesion tables (contract columns, sorted) of every case in ``case_ids``.

    ``lesions`` (lesions.csv or its table), when given, is checked against the reference lesions found
    here so per_lesion rows join it on ``(case_id, lesion_id)``.
    """
    predictions, prepared = Path(predictions), Path(prepared)
    if not predictions.is_dir():
        raise EvaluationError(f"{predictions}: predictions folder is missing")
    if not prepared.is_dir():
        raise EvaluationError(f"{prepared}: prepared cases folder is missing")
    metas = {cid: read_meta(prepared, cid) for cid in case_ids}
    paths, missing = prediction_paths(predictions, metas)
    if missing and not settings.missing_as_empty:
        raise EvaluationError(
            f"{predictions}: {len(missing)} of {len(case_ids)} test predictions are missing "
            f"(cases {missing}); add them, or score them as empty predictions "
            f"(lesionbench compare --missing-as-empty; config evaluation.missing_predictions: empty)"
        )
    for cid in missing:
        log.warning(
            "%s: no prediction for case %r: scored as an empty prediction (missing_prediction = True)", predictions, cid
        )
    labels = shared_labels(metas.values())
    threshold = settings.threshold if settings.probability_maps else None
    where = lesions if not isinstance(lesions, pd.DataFrame) else "lesions.csv"
    table = (
        lesions
        if isinstance(lesions, pd.DataFrame) or lesions is None
        else _read_table(lesions, ["case_id", "lesion_id", "voxels"])
    )
    if table is not None:
        table = table.assign(case_id=table["case_id"].astype(str))
    case_rows, lesion_rows = [], []
    for n, cid in enumerate(case_ids, start=1):
        case = load_case(prepared, cid, image=False)
        if cid in paths:
            try:
                pred = read_prediction(predictions, metas[cid], threshold=threshold, labels=labels, path=paths[cid])
            except PredictionError as exc:
                raise EvaluationError(f"case {cid!r}: {exc}") from exc
        else:
            pred = np.zeros(case.mask.shape, bool)
        try:
            ev = evaluate_case(
                case.mask,
                pred,
                case.spacing,
                ignore=case.ignore,
                tolerance_mm=settings.tolerance_mm,
                dilation_mm=settings.dilation_mm,
                penalty_mm=settings.penalty_mm,
                threshold=settings.threshold,
                min_component_voxels=settings.min_component_voxels,
                surface_definition=settings.surface_definition,
            )
        except ValueError as exc:
            raise EvaluationError(f"case {cid!r}: {exc}") from exc
        _check_lesions(ev, cid, table, where)
        key = {"dataset": dataset, "model": model, "seed": int(seed), "case_id": cid}
        row = ev.case_row()
        case_rows.append({**key, **row, "missing_prediction": cid not in paths})
        lesion_rows += [{**key, **r} for r in ev.lesion_rows()]
        log.info(
            "%s %d/%d: Dice %.4f HD95 %.3f mm, %d/%d lesions hit, %d false positive",
            cid,
            n,
            len(case_ids),
            row["dice"],
            row["hd95"],
            row["n_hit_lesions"],
            row["n_ref_lesions"],
            row["n_fp_lesions"],
        )
    per_case = pd.DataFrame(case_rows, columns=PER_CASE_COLUMNS).sort_values("case_id", kind="stable")
    per_lesion = pd.DataFrame(lesion_rows, columns=PER_LESION_COLUMNS)
    if len(per_lesion):
        per_lesion = per_lesion.sort_values(
            ["case_id", "kind", "lesion_id"], kind="stable", key=lambda c: c.map(KIND_ORDER) if c.name == "kind" else c
        )
    for name, frame in (("per_case", per_case), ("per_lesion", per_lesion)):
        numeric = frame.select_dtypes("number")
        if not np.isfinite(numeric.to_numpy(float)).all():
            raise EvaluationError(f"{name} table of {dataset}/{model}/seed{seed} holds NaN or infinite values")
    return per_case.reset_index(drop=True), per_lesion.reset_index(drop=True)


def evaluate_to_files(
    predictions,
    prepared,
    split_csv,
    per_case_csv,
    per_lesion_csv,
    *,
    dataset: str,
    model: str,
    seed: int,
    settings: Settings,
    lesions_csv=None,
    provenance_json=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``evaluate_folder`` over the test split of ``split_csv``, writing both tables atomically, and, if
    ``provenance_json`` is given, the metric-code hash and settings beside them (``evaluation.provenance``)."""
    ids = test_case_ids(split_csv)
    log.info(
        "evaluating %s/%s/seed%s: %d test cases from %s (%s)", dataset, model, seed, len(ids), predictions, settings
    )
    per_case, per_lesion = evaluate_folder(
        predictions, prepared, ids, dataset=dataset, model=model, seed=seed, settings=settings, lesions=lesions_csv
    )
    write_csv(per_case, per_case_csv)
    write_csv(per_lesion, per_lesion_csv)
    if provenance_json is not None:
        from .provenance import write_provenance

        write_provenance(provenance_json, settings, dataset=dataset, model=model, seed=seed)
    log.info("wrote %s (%d rows) and %s (%d rows)", per_case_csv, len(per_case), per_lesion_csv, len(per_lesion))
    return per_case, per_lesion
