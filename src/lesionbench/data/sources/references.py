"""The ``references`` source: reference masks only, read from a folder as the user has it (evaluation-only
data sets; every case is a test case, see ``split.all_test``).

Layouts recognised under ``path`` (``discover``), in this order:

- **nnU-Net v2 raw data set**: ``dataset.json`` with ``file_ending`` and ``labels`` (name -> value, or a
  list of values for region-based labels), masks in ``labelsTs/`` (else ``labelsTr/``) named
  ``{case_id}{file_ending}``. A label named ``ignore`` (nnU-Net's ignore label) is ignored by default.
- **Medical Segmentation Decathlon** (and nnU-Net v1): ``dataset.json`` with ``labels`` as
  ``{"0": "background", "1": ...}``, masks in ``labelsTs/`` (else ``labelsTr/``), ``.nii.gz``.
- ``path`` may also be the ``labelsTs``/``labelsTr`` folder itself, with ``dataset.json`` one level up.
- **folder source layout**: ``masks/`` (images in ``images/`` are used when present).
- **plain**: mask files directly in ``path``, ``{case_id}.<nii|nii.gz|png|tif|...>``.

Images are optional (``images``: a folder of ``{case_id}.<ext>`` or nnU-Net's ``{case_id}_0000.<ext>``); they
only serve as the background of the qualitative figure. Without one a case gets a zero-channel image.

Label values: ``labels.values`` (from dataset.json when the config does not give them) are every value a mask
may hold; a reference holding another value is refused. The labels used for a case are recorded in its
meta.json (``source.labels``) so predictions are read with the same label map (lesionbench.io.predictions).
NIfTI masks take their spacing from the header (volumes stored slice axis first, as the folder source);
PNG/TIFF masks take config ``spacing`` (default 1 mm per pixel).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...io.images import ImageReadError, is_nifti, read_nifti, read_raster
from ...io.predictions import distinct_values
from . import RawCase, SourceError, SourceMissingError
from .folder import NIFTI_AXIS_ORDER, _case_files, binarize_labels

log = logging.getLogger(__name__)

LABEL_FOLDERS = ("labelsTs", "labelsTr")


@dataclass
class Layout:
    """What ``discover`` found: the layout kind, the masks by case id and the label settings it declares."""

    kind: str  # nnunet | msd | folder | plain
    masks_dir: Path
    masks: dict[str, Path]
    label_values: list[int] | None = None  # every value a mask may hold (besides 0), when declared
    ignore_labels: list[int] = field(default_factory=list)
    file_ending: str | None = None
    images_dir: Path | None = None


def _read_dataset_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: unreadable dataset.json ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("labels"), dict):
        raise SourceError(f"{path}: dataset.json has no 'labels' mapping")
    return data


def _declared_labels(data: dict, where: Path) -> tuple[list[int], list[int]]:
    """(non-zero label values, ignore label values) of a dataset.json ``labels`` block.

    nnU-Net v2: ``{"background": 0, "lesion": 1, "ignore": 2}`` or region lists ``{"whole": [1, 2, 3]}``;
    MSD / nnU-Net v1: ``{"0": "background", "1": "Liver", "2": "Cancer"}``."""
    labels = data["labels"]
    values, ignore = set(), set()
    try:
        if all(str(k).isdigit() and isinstance(v, str) for k, v in labels.items()):
            values = {int(k) for k in labels}
        else:
            for name, value in labels.items():
                group = {int(v) for v in (value if isinstance(value, list) else [value])}
                values |= group
                if str(name).lower() == "ignore":
                    ignore |= group
    except (TypeError, ValueError) as exc:
        raise SourceError(f"{where}: dataset.json labels are not integers ({exc})") from exc
    return sorted(values - {0}), sorted(ignore - {0})


def _nnunet_files(folder: Path, ending: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if not p.name.endswith(ending):
            if not p.name.endswith(".json"):
                log.warning("%s: not a %s file, ignored", p, ending)
            continue
        files[p.name[: -len(ending)]] = p
    return files


def discover(path: str | Path, images: str | Path | None = None) -> Layout:
    """Find the reference masks (and the label values the layout declares) under ``path``."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise SourceMissingError(f"{root}: reference folder not found")
    json_path = root / "dataset.json"
    if not json_path.is_file() and root.name in LABEL_FOLDERS and (root.parent / "dataset.json").is_file():
        json_path, label_dirs = root.parent / "dataset.json", [root]
    else:
        label_dirs = [root / d for d in LABEL_FOLDERS if (root / d).is_dir()]
    if json_path.is_file():
        data = _read_dataset_json(json_path)
        if not label_dirs:
            raise SourceMissingError(f"{root}: dataset.json found but no labelsTs/ or labelsTr/ folder")
        values, ignore = _declared_labels(data, json_path)
        kind = "nnunet" if "file_ending" in data else "msd"
        ending = str(data.get("file_ending", ".nii.gz"))
        masks_dir = label_dirs[0]
        if len(label_dirs) > 1:
            log.info("%s: using %s (labelsTs preferred over labelsTr)", root, masks_dir.name)
        masks = _nnunet_files(masks_dir, ending)
        layout = Layout(kind, masks_dir, masks, values, ignore, ending)
    elif (root / "masks").is_dir():
        layout = Layout("folder", root / "masks", _case_files(root / "masks"))
        if images is None and (root / "images").is_dir():
            images = root / "images"
    else:
        layout = Layout("plain", root, _case_files(root))
    if not layout.masks:
        raise SourceMissingError(
            f"{layout.masks_dir}: no reference mask files ({layout.file_ending or '.nii.gz, .nii, .png, .tif'})"
        )
    if images is not None:
        layout.images_dir = Path(images).expanduser().resolve()
        if not layout.images_dir.is_dir():
            raise SourceMissingError(f"{layout.images_dir}: images folder not found")
    return layout


def image_files(images_dir: Path, case_ids) -> dict[str, Path]:
    """The image of each case: ``{case_id}.<ext>`` or nnU-Net's first channel ``{case_id}_0000.<ext>``."""
    files = _case_files(images_dir)
    found, missing = {}, []
    for cid in case_ids:
        path = files.get(cid) or files.get(f"{cid}_0000")
        if path is None:
            missing.append(cid)
        else:
            found[cid] = path
    if missing:
        raise SourceError(f"{images_dir}: no image for {len(missing)} reference case(s): {missing}")
    return found


def labels_of(ds_cfg: dict, layout_values=None, layout_ignore=None) -> dict:
    """The label settings of the data set: config ``labels`` first, then what dataset.json declares."""
    cfg = ds_cfg.get("labels") or {}
    ignore = cfg.get("ignore") if cfg.get("ignore") is not None else (layout_ignore or None)
    values = cfg.get("values") if cfg.get("values") is not None else layout_values
    return {"lesion": cfg.get("lesion"), "ignore": ignore, "values": values}


def acquire(name: str, ds_cfg: dict, raw_dir: Path) -> pd.DataFrame:
    """List the reference masks (absolute paths, nothing copied); every case is official ``test``."""
    layout = discover(ds_cfg["path"], ds_cfg.get("images"))
    ids = sorted(layout.masks)
    images = image_files(layout.images_dir, ids) if layout.images_dir else {}
    labels = labels_of(ds_cfg, layout.label_values, layout.ignore_labels)
    log.info(
        "%s: %s layout, %d reference masks in %s, labels %s", name, layout.kind, len(ids), layout.masks_dir, labels
    )
    return pd.DataFrame(
        {
            "case_id": ids,
            "image": [str(images[c]) if c in images else "" for c in ids],
            "mask": [str(layout.masks[c]) for c in ids],
            "official_split": ["test"] * len(ids),
            "layout": [layout.kind] * len(ids),
            "label_values": [json.dumps(labels["values"])] * len(ids),
            "ignore_labels": [json.dumps(labels["ignore"])] * len(ids),
        }
    )


def _check_values(labels: np.ndarray, allowed, where: str) -> list[int]:
    """Distinct values of a label map; refuses values outside ``allowed`` (when given)."""
    found = distinct_values(labels)
    if allowed is not None:
        unknown = sorted(set(found.tolist()) - {0} - set(allowed))
        if unknown:
            raise SourceError(
                f"{where}: unknown label values {unknown}; the data set's labels are "
                f"{sorted(set(allowed) | {0})} (dataset.json labels or config labels.values)"
            )
    return [int(v) for v in found.tolist()]


def read_case(row: dict, ds_cfg: dict, raw_dir: Path) -> RawCase:
    mask_path = Path(row["mask"])
    image_path = Path(row["image"]) if isinstance(row.get("image"), str) and row["image"] else None
    stored_values = json.loads(row["label_values"]) if isinstance(row.get("label_values"), str) else None
    stored_ignore = json.loads(row["ignore_labels"]) if isinstance(row.get("ignore_labels"), str) else None
    labels = labels_of(ds_cfg, stored_values, stored_ignore)
    try:
        if is_nifti(mask_path):
            data, affine, spacing = read_nifti(mask_path)
            data = np.asarray(data)
            if data.ndim not in (2, 3):
                raise SourceError(f"{mask_path}: expected a 2D or 3D mask, got shape {data.shape}")
            axis_order = NIFTI_AXIS_ORDER if data.ndim == 3 else None
        else:
            data, affine, axis_order = read_raster(mask_path), None, None
            spacing = tuple(float(s) for s in ds_cfg.get("spacing", (1.0, 1.0)))
    except ImageReadError as exc:
        raise SourceError(str(exc)) from exc
    if data.dtype.kind == "f":
        integral = np.all(np.isfinite(data)) and np.array_equal(data, np.round(data))
        data = data.astype(np.int64) if integral else data  # binarize_labels refuses fractional masks
    colour = data.ndim == 3 and data.shape[-1] in (3, 4) and not is_nifti(mask_path)
    flat = data[..., :3].max(axis=-1) if colour else data
    allowed = (
        None
        if labels["values"] is None
        else list(labels["values"]) + list(labels["lesion"] or []) + list(labels["ignore"] or [])
    )
    found = _check_values(np.asarray(flat), allowed, f"{mask_path} (case {row['case_id']!r})")
    # Declared labels that are neither lesion nor ignored (e.g. the liver beside a liver tumour) are
    # background here; binarize_labels refuses values it was not told about.
    other = sorted(set(labels["values"] or []) - set(labels["lesion"] or []) - set(labels["ignore"] or []))
    if labels["lesion"] and other:
        data = np.where(np.isin(data, other), 0, data)
    mask, ign = binarize_labels(data, labels["lesion"], labels["ignore"], str(mask_path))
    spacing = tuple(float(s) for s in spacing[: mask.ndim])
    if axis_order is not None:
        mask = np.ascontiguousarray(np.transpose(mask, axis_order))
        ign = None if ign is None else np.ascontiguousarray(np.transpose(ign, axis_order))
        spacing = tuple(spacing[a] for a in axis_order)
    image = _read_image(image_path, mask.shape, axis_order) if image_path else np.zeros((0,) + mask.shape, np.float32)
    # Predictions are read with the same label map: the declared values, else those found in this mask.
    recorded = dict(labels, values=sorted(set(labels["values"] if labels["values"] is not None else found) - {0}))
    return RawCase(
        row["case_id"],
        image,
        mask,
        spacing,
        ign,
        affine,
        axis_order,
        source={"image": image_path.name if image_path else "", "mask": str(mask_path), "labels": recorded},
    )


def _read_image(path: Path, shape: tuple, axis_order) -> np.ndarray:
    """A case's image, channels first in the prepared layout (display only: the first three channels)."""
    try:
        if is_nifti(path):
            image, _, _ = read_nifti(path)
            image = np.asarray(image, np.float32)
            if axis_order is not None:
                image = image[..., 0] if image.ndim == 4 else image
                image = np.transpose(image, axis_order)[None]
            else:
                image = image[None]
        else:
            image = read_raster(path).astype(np.float32)
            image = image[None] if image.ndim == 2 else np.moveaxis(image[..., :3], -1, 0)
    except ImageReadError as exc:
        raise SourceError(str(exc)) from exc
    if tuple(image.shape[1:]) != tuple(shape):
        raise SourceError(f"{path}: image shape {image.shape[1:]} != reference mask shape {tuple(shape)}")
    return image
