"""The generic folder source: how a user brings their own data set, and how synthetic data is read.

Layout under the configured ``path``::

    images/<case_id>.<png|jpg|tif|nii|nii.gz>   2D raster (grey or RGB) or a 3D NIfTI volume
    masks/<case_id>.<png|tif|nii|nii.gz>        integer label map of the same spatial shape
    split.csv                                   optional: case_id,split with split in {train,test}

Mask values listed in ``labels.ignore`` become the ignore mask; values in ``labels.lesion`` are lesion (if
``labels.lesion`` is not given, every non-zero value that is not ignored is lesion). When ``labels.lesion``
is given, any other non-zero value is an error naming the mask and the values (never silently background);
a value may not be both lesion and ignore. An RGB(A) mask is read on its colour channels only (alpha never
decides): a pixel's value is its largest channel. A palette PNG mask is read by palette index, and refused
when its palette contradicts that reading (lesionbench.io.images.read_label_raster). A case listed twice in
``split.csv`` is an error. 2D spacing comes from config ``spacing`` (default 1 mm
per pixel); 3D spacing from the NIfTI header. Volumes are stored slice axis first: (i, j, k) -> (k, i, j).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...io.images import (
    NIFTI_SUFFIXES,
    RASTER_SUFFIXES,
    ImageReadError,
    is_nifti,
    read_label_raster,
    read_nifti,
    read_raster,
    suffix_of,
)
from . import RawCase, SourceError, SourceMissingError

NIFTI_AXIS_ORDER = (2, 0, 1)  # prepared axis a <- file axis NIFTI_AXIS_ORDER[a]


def _case_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        suffix = suffix_of(p)
        if p.name.startswith(".") or suffix not in NIFTI_SUFFIXES + RASTER_SUFFIXES:
            continue
        case_id = p.name[: -len(suffix)]
        if case_id in files:
            raise SourceError(f"{folder}: two files for case {case_id!r}: {files[case_id].name}, {p.name}")
        files[case_id] = p
    return files


def scan(root: str | Path) -> pd.DataFrame:
    """Match ``images/`` to ``masks/`` by case id and read the optional official ``split.csv``."""
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise SourceMissingError(f"{d}: folder missing; a folder data set needs images/ and masks/ "
                                     f"with one file per case named <case_id>.<ext> (see README 'Data sets')")
    images, masks = _case_files(images_dir), _case_files(masks_dir)
    if not images:
        raise SourceMissingError(f"{images_dir}: no image files (.png, .jpg, .tif, .nii, .nii.gz)")
    unmatched = sorted(set(images) ^ set(masks))
    if unmatched:
        raise SourceError(f"{root}: cases without both an image and a mask: {unmatched[:10]}")
    official = {}
    split_file = root / "split.csv"
    if split_file.is_file():
        table = pd.read_csv(split_file, dtype=str)
        if not {"case_id", "split"} <= set(table.columns):
            raise SourceError(f"{split_file}: needs columns case_id,split")
        bad = sorted(set(table["split"]) - {"train", "test"})
        if bad:
            raise SourceError(f"{split_file}: split values must be train or test, found {bad}")
        repeated = table[table["case_id"].duplicated(keep=False)].sort_values("case_id", kind="stable")
        if len(repeated):
            listed = {c: sorted(set(g["split"])) for c, g in repeated.groupby("case_id", sort=True)}
            conflicts = {c: v for c, v in listed.items() if len(v) > 1}
            what = (f"with different splits: {dict(list(conflicts.items())[:10])}" if conflicts
                    else f"more than once: {list(listed)[:10]}")
            raise SourceError(f"{split_file}: lists cases {what}; keep one row per case_id")
        official = dict(zip(table["case_id"], table["split"]))
        unknown = sorted(set(official) - set(images))
        if unknown:
            raise SourceError(f"{split_file}: lists cases with no image: {unknown[:10]}")
    return pd.DataFrame({
        "case_id": sorted(images),
        "image": [str(images[c].relative_to(root)) for c in sorted(images)],
        "mask": [str(masks[c].relative_to(root)) for c in sorted(images)],
        "official_split": [official.get(c, "") for c in sorted(images)],
    })


def acquire(name: str, ds_cfg: dict, raw_dir: Path) -> pd.DataFrame:
    """Check the user's folder; the manifest points into it (absolute paths), nothing is copied."""
    root = Path(ds_cfg["path"]).expanduser().resolve()
    if not root.is_dir():
        raise SourceMissingError(f"{root}: data set {name!r} folder not found (config datasets.{name}.path); "
                                 f"put images/ and masks/ there")
    manifest = scan(root)
    manifest["image"] = [str(root / p) for p in manifest["image"]]
    manifest["mask"] = [str(root / p) for p in manifest["mask"]]
    return manifest


def binarize_labels(labels: np.ndarray, lesion: list[int] | None, ignore: list[int] | None,
                    where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Label map -> (lesion mask uint8 0/1, ignore mask uint8 0/1 or None)."""
    if labels.ndim == 3 and labels.shape[-1] in (3, 4) and where.lower().endswith(RASTER_SUFFIXES):
        labels = labels[..., :3].max(axis=-1)  # colour mask: any colour channel set; alpha ignored
    if not np.issubdtype(labels.dtype, np.number) and labels.dtype != bool:
        raise SourceError(f"{where}: mask has non-numeric type {labels.dtype}")
    labels = np.asarray(labels)
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise SourceError(f"{where}: mask holds non-integer values; expected a label map")
    both = sorted(set(lesion or ()) & set(ignore or ()))
    if both:
        raise SourceError(f"{where}: labels {both} are in both labels.lesion {list(lesion or [])} and "
                          f"labels.ignore {list(ignore or [])}; a value is either lesion or ignored, remove it from one list")
    if lesion:
        known = {0, *lesion, *(ignore or ())}
        values = np.unique(labels)
        unknown = [v.item() for v in values if v.item() not in known]
        if unknown:
            raise SourceError(f"{where}: mask holds label values {unknown[:10]} that are neither background (0) "
                              f"nor in labels.lesion {list(lesion)} or labels.ignore {list(ignore or [])} (values "
                              f"found: {[v.item() for v in values[:20]]}); add each to labels.lesion or "
                              f"labels.ignore of this data set in the config, or fix the mask")
    ignore_mask = np.isin(labels, ignore).astype(np.uint8) if ignore else None
    if lesion:
        mask = np.isin(labels, lesion)
    else:
        mask = labels != 0
        if ignore_mask is not None:
            mask &= ignore_mask == 0
    if ignore_mask is not None and not ignore_mask.any():
        ignore_mask = None
    return mask.astype(np.uint8), ignore_mask


def _resolve(path: str, raw_dir: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else raw_dir / p


def read_case(row: dict, ds_cfg: dict, raw_dir: Path) -> RawCase:
    labels_cfg = ds_cfg.get("labels", {})
    lesion, ignore = labels_cfg.get("lesion"), labels_cfg.get("ignore")
    image_path, mask_path = _resolve(row["image"], raw_dir), _resolve(row["mask"], raw_dir)
    try:
        if is_nifti(image_path):
            image, affine, spacing = read_nifti(image_path)
            labels, _, _ = read_nifti(mask_path)
            if image.ndim == 4:  # (i, j, k, channel) -> channels first
                image = np.moveaxis(image, -1, 0)
            elif image.ndim == 3:
                image = image[None]
            else:
                raise SourceError(f"{image_path}: expected a 3D (or 3D+channel) volume, got shape {image.shape}")
            spacing = spacing[:3]
            if labels.shape != image.shape[1:]:
                raise SourceError(f"{mask_path}: mask shape {labels.shape} != image shape {image.shape[1:]}")
            mask, ign = binarize_labels(labels, lesion, ignore, str(mask_path))
            image = np.moveaxis(image, -1, 1)  # (C, i, j, k) -> (C, k, i, j)
            mask = np.ascontiguousarray(np.moveaxis(mask, -1, 0))
            ign = None if ign is None else np.ascontiguousarray(np.moveaxis(ign, -1, 0))
            spacing = tuple(spacing[a] for a in NIFTI_AXIS_ORDER)
            return RawCase(row["case_id"], image, mask, spacing, ign, affine, NIFTI_AXIS_ORDER,
                           source={"image": image_path.name, "mask": mask_path.name})
        image = read_raster(image_path, palette="colour")
        labels = read_label_raster(mask_path)
    except ImageReadError as exc:
        raise SourceError(str(exc)) from exc
    image = image[None] if image.ndim == 2 else np.moveaxis(image[..., :3], -1, 0)
    mask, ign = binarize_labels(labels, lesion, ignore, str(mask_path))
    if mask.shape != image.shape[1:]:
        raise SourceError(f"{mask_path}: mask shape {mask.shape} != image shape {image.shape[1:]}")
    spacing = tuple(float(s) for s in ds_cfg.get("spacing", (1.0, 1.0)))
    return RawCase(row["case_id"], image, mask, spacing, ign, None, None,
                   source={"image": image_path.name, "mask": mask_path.name})
