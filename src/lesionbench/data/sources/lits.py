"""LiTS liver tumours, through the Medical Segmentation Decathlon (Task03_Liver) or the original LiTS release.

Acquisition, in this order, under the configured ``path``:

1. ``Task03_Liver/`` already extracted (by this module, or by the user: needs ``dataset.json``,
   ``imagesTr/``, ``labelsTr/``);
2. the original LiTS release placed by the user: ``volume-N.nii[.gz]`` with ``segmentation-N.nii[.gz]``
   anywhere below ``path`` (e.g. ``Training Batch 1/``, ``Training Batch 2/``);
3. ``Task03_Liver.tar`` - placed by the user, or downloaded when ``download.enabled`` (default) - is checked
   against its MD5 and extracted: only ``dataset.json``, ``imagesTr/`` and ``labelsTr/`` (the unlabelled
   ``imagesTs/`` is not used), skipping macOS ``._*`` side files, safely and atomically.

Labels: 0 background, 1 liver, 2 tumour; the lesion is label 2 (config ``labels.lesion``), the liver is
background. Case ids are ``liver_N`` with N the number in the file name (``liver_N.nii.gz`` in MSD,
``volume-N.nii`` in LiTS).

Split: the MSD test images have no labels, so the test set is a fixed list of 40 of the 131 labelled cases
(``TEST_CASES``: the 40 smallest sha256(f"lesionbench/lits-test/{N}") over N = 0..130), recorded here as
``official_split`` so it is the same for every config salt and for both releases. The rest is train/val
(split by the split stage).

Reading is memory-frugal (a LiTS volume is up to 512 x 512 x 987 voxels): volumes are read from the
nibabel proxy in slabs of slices straight into the prepared layout ``(k, i, j)``, the image keeps its
stored integer type (int16: 0.5 GB for 900 slices) unless the file applies a scaling, and the label map is
binarized slab by slab, never held whole in its stored type.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ...io.images import ImageReadError, nifti_spacing
from .. import download
from . import RawCase, SourceError, SourceMissingError

log = logging.getLogger(__name__)

MSD_URL = "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task03_Liver.tar"
MSD_MD5 = "a90ec6c4aa7f6a3d087205e23d4e6397"
MSD_ARCHIVE = "Task03_Liver.tar"
MSD_FOLDER = "Task03_Liver"
LABELS = {"lesion": [2], "ignore": []}
MAX_LABEL = 2
NIFTI_AXIS_ORDER = (2, 0, 1)  # prepared axis a <- file axis NIFTI_AXIS_ORDER[a]
SLAB = 32                     # slices read at a time

N_LABELLED = 131
N_TEST = 40
TEST_CASES = (2, 4, 11, 13, 15, 16, 19, 20, 24, 33, 37, 38, 39, 45, 46, 49, 51, 53, 58, 60, 65, 70, 72, 75,
              76, 79, 82, 83, 90, 94, 95, 101, 108, 109, 113, 118, 121, 124, 125, 127)


def derive_test_cases(n_labelled: int = N_LABELLED, n_test: int = N_TEST) -> list[int]:
    """The rule that produced ``TEST_CASES`` (kept so the list can be re-derived and checked)."""
    ranked = sorted(range(n_labelled),
                    key=lambda n: hashlib.sha256(f"lesionbench/lits-test/{n}".encode()).hexdigest())
    return sorted(ranked[:n_test])


def official_split(number: int) -> str:
    return "test" if number in TEST_CASES else "train"


# -- NIfTI reading in slabs (shared by the volume sources) ---------------------------------------------

def _load(path: Path):
    import nibabel as nib

    try:
        img = nib.load(str(path), keep_file_open=True)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise SourceError(f"{path}: cannot read NIfTI ({exc})") from exc
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise SourceError(f"{path}: expected a 3D volume, got shape {tuple(img.shape)}")
    return img, shape


def _slabs(img, path: Path, shape: tuple[int, int, int], slab: int = SLAB):
    """Yield (k0, k1, data[i, j, k0:k1]) with the file's scaling applied."""
    proxy = img.dataobj
    try:
        for k0 in range(0, shape[2], slab):
            k1 = min(shape[2], k0 + slab)
            index = (slice(None), slice(None), slice(k0, k1)) + ((0,) if len(img.shape) == 4 else ())
            yield k0, k1, np.asarray(proxy[index])
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise SourceError(f"{path}: truncated or unreadable voxel data ({exc})") from exc


def _spacing(img, path: Path) -> tuple[float, float, float]:
    try:
        zooms = nifti_spacing(img, path, 3)  # the stored pixdim: nibabel's load repairs 0 and negatives
    except ImageReadError as exc:
        raise SourceError(str(exc)) from exc
    return tuple(zooms[a] for a in NIFTI_AXIS_ORDER)


def read_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """A NIfTI volume as ``(k, i, j)``, with its affine and spacing in that order.

    The stored type is kept when the file's scaling is the identity (int16 CT stays int16); a scaled or
    float64 volume becomes float32. Peak memory is the result plus one slab.
    """
    path = Path(path)
    img, shape = _load(path)
    proxy = img.dataobj
    slope, inter = float(getattr(proxy, "slope", 1.0)), float(getattr(proxy, "inter", 0.0))
    dtype = np.dtype(getattr(proxy, "dtype", np.float32))
    if slope != 1.0 or inter != 0.0 or dtype.kind not in "iuf" or dtype.itemsize > 4:
        dtype = np.dtype(np.float32)
    out = np.empty((shape[2], shape[0], shape[1]), dtype)
    for k0, k1, data in _slabs(img, path, shape):
        out[k0:k1] = np.moveaxis(data, -1, 0)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise SourceError(f"{path}: volume holds NaN or infinite values")
    return out, np.asarray(img.affine, float), _spacing(img, path)


def read_label_volume(path: str | Path, shape_ijk: tuple[int, int, int], lesion: list[int],
                      ignore: list[int] | None, max_label: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Binarize a label map slab by slab: (lesion mask, ignore mask or None), uint8 0/1 in ``(k, i, j)``.

    Fails naming the file when its shape differs from the image's or a value is not an integer label in
    ``0..max_label``.
    """
    path = Path(path)
    img, shape = _load(path)
    if shape != tuple(shape_ijk):
        raise SourceError(f"{path}: label shape {shape} != image shape {tuple(shape_ijk)}")
    mask = np.zeros((shape[2], shape[0], shape[1]), np.uint8)
    ign = np.zeros_like(mask) if ignore else None
    for k0, k1, data in _slabs(img, path, shape):
        if data.dtype.kind == "f":
            if not np.isfinite(data).all() or not np.array_equal(data, np.rint(data)):
                raise SourceError(f"{path}: label map holds non-integer values")
        if data.size and (data.min() < 0 or data.max() > max_label):
            raise SourceError(f"{path}: label values {data.min():g}..{data.max():g} outside 0..{max_label}")
        mask[k0:k1] = np.moveaxis(np.isin(data, lesion), -1, 0)
        if ign is not None:
            ign[k0:k1] = np.moveaxis(np.isin(data, ignore), -1, 0)
    if ign is not None and not ign.any():
        ign = None
    return mask, ign


def read_nifti_case(case_id: str, image_paths: list[Path], label_path: Path, lesion: list[int],
                    ignore: list[int] | None, max_label: int) -> RawCase:
    """One volume case: channels from ``image_paths`` (same grid), binarized labels, header spacing."""
    channels, affine, spacing = [], None, None
    for p in image_paths:
        vol, aff, sp = read_volume(p)
        if channels and vol.shape != channels[0].shape:
            raise SourceError(f"{p}: shape {vol.shape[1:] + vol.shape[:1]} differs from "
                              f"{image_paths[0].name} {channels[0].shape[1:] + channels[0].shape[:1]}")
        if affine is None:
            affine, spacing = aff, sp
        channels.append(vol)
    if len(channels) == 1:
        image = channels[0][None]  # a view: no copy of a large volume
    else:
        image = np.stack(channels)
    del channels
    shape_ijk = (image.shape[2], image.shape[3], image.shape[1])
    mask, ign = read_label_volume(label_path, shape_ijk, lesion, ignore, max_label)
    source = {"image": [p.name for p in image_paths] if len(image_paths) > 1 else image_paths[0].name,
              "mask": label_path.name}
    return RawCase(case_id, image, mask, spacing, ign, affine, NIFTI_AXIS_ORDER, source=source)


# -- acquisition ------------------------------------------------------------------------------------

def _missing_message(name: str, root: Path, dl: dict, cause: str = "") -> str:
    url, md5 = dl.get("url", MSD_URL), dl.get("md5", MSD_MD5)
    because = f" ({cause})" if cause else ""
    return (f"data set {name!r} (LiTS): no files found under {root}{because}. Get them one of two ways: "
            f"(1) the Medical Segmentation Decathlon archive {url} (Task03_Liver.tar, about 29 GB, "
            f"CC BY-SA 4.0) - downloaded automatically when datasets.{name}.download.enabled is true, or "
            f"put it at {root / MSD_ARCHIVE} (or its extracted folder {root / MSD_FOLDER}/ with dataset.json, "
            f"imagesTr/, labelsTr/); check it with `md5sum {MSD_ARCHIVE}` = {md5}; "
            f"(2) the original LiTS training release (https://competitions.codalab.org/competitions/17094): "
            f"put volume-N.nii and segmentation-N.nii (131 pairs, N = 0..130) anywhere below {root}.")


def _case_number(stem: str, pattern: str, where: Path) -> int:
    match = re.fullmatch(pattern, stem)
    if not match:
        raise SourceError(f"{where}: unexpected file name {stem!r}")
    return int(match.group(1))


def _nifti_stem(name: str) -> str | None:
    lower = name.lower()
    for suffix in (".nii.gz", ".nii"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def scan_msd(folder: Path) -> pd.DataFrame:
    """Manifest of an extracted Task03_Liver folder (from ``dataset.json`` when present)."""
    meta_path = folder / "dataset.json"
    pairs = []
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            entries = meta["training"]
            pairs = [(str(e["image"]), str(e["label"])) for e in entries]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise SourceError(f"{meta_path}: not a Decathlon dataset.json ({exc})") from exc
        declared = meta.get("numTraining")
        if declared is not None and int(declared) != len(pairs):
            raise SourceError(f"{meta_path}: numTraining = {declared} but {len(pairs)} training entries")
    else:
        images = sorted(p.name for p in (folder / "imagesTr").glob("*.nii*") if not download.is_junk(p.name))
        pairs = [(f"imagesTr/{n}", f"labelsTr/{n}") for n in images]
    rows, missing = [], []
    for image, label in pairs:
        image_path, label_path = folder / image, folder / label
        for p in (image_path, label_path):
            if not p.is_file():
                missing.append(str(p.relative_to(folder)))
        stem = _nifti_stem(image_path.name) or image_path.name
        number = _case_number(stem, r"liver_(\d+)", image_path)
        rows.append({"case_id": f"liver_{number}", "image": str(image_path.resolve()),
                     "mask": str(label_path.resolve()), "official_split": official_split(number),
                     "number": number})
    if missing:
        raise SourceError(f"{folder}: {len(missing)} files listed in dataset.json are missing, e.g. "
                          f"{missing[:5]}; the extraction is incomplete - delete {folder} and acquire again")
    if not rows:
        raise SourceError(f"{folder}: no training cases found")
    return pd.DataFrame(rows)


def scan_lits(root: Path) -> pd.DataFrame | None:
    """Manifest of the original LiTS release below ``root`` (``volume-N`` + ``segmentation-N``), or None."""
    volumes, segs = {}, {}
    for p in sorted(root.rglob("*.nii*")):
        if download.is_junk(str(p.relative_to(root))) or MSD_FOLDER in p.relative_to(root).parts:
            continue
        stem = _nifti_stem(p.name)
        if stem is None:
            continue
        for prefix, table in (("volume-", volumes), ("segmentation-", segs)):
            if stem.startswith(prefix):
                number = _case_number(stem, re.escape(prefix) + r"(\d+)", p)
                if number in table:
                    raise SourceError(f"{p}: a second file for LiTS case {number} (also {table[number]})")
                table[number] = p
    if not volumes:
        return None
    unlabelled = sorted(set(volumes) - set(segs))
    if unlabelled:
        log.info("LiTS volumes without segmentation (not used): %s", unlabelled[:10])
    orphans = sorted(set(segs) - set(volumes))
    if orphans:
        raise SourceError(f"{segs[orphans[0]]}: segmentation without its volume-{orphans[0]} file")
    numbers = sorted(set(volumes) & set(segs))
    if not numbers:
        return None
    return pd.DataFrame({
        "case_id": [f"liver_{n}" for n in numbers],
        "image": [str(volumes[n].resolve()) for n in numbers],
        "mask": [str(segs[n].resolve()) for n in numbers],
        "official_split": [official_split(n) for n in numbers],
        "number": numbers,
    })


def acquire(name: str, ds_cfg: dict, raw_dir: Path) -> pd.DataFrame:
    root = Path(ds_cfg["path"]).expanduser().resolve()
    dl = ds_cfg.get("download") or {}
    folder = root / MSD_FOLDER
    if (folder / "dataset.json").is_file() or (folder / "imagesTr").is_dir():
        manifest, origin = scan_msd(folder), "msd"
    else:
        manifest = scan_lits(root) if root.is_dir() else None
        origin = "lits"
        if manifest is None:
            manifest, origin = scan_msd(_fetch_and_extract(name, root, dl)), "msd"
    _write_provenance(raw_dir, name, root, origin, dl, manifest)
    log.info("%s: %d labelled LiTS cases from %s (%s)", name, len(manifest), root, origin)
    return manifest


def _fetch_and_extract(name: str, root: Path, dl: dict) -> Path:
    archive = root / MSD_ARCHIVE
    url, md5 = dl.get("url", MSD_URL), dl.get("md5", MSD_MD5)
    if dl.get("enabled", True):
        try:
            download.fetch(url, archive, md5, retries=int(dl.get("retries", 3)),
                           timeout=float(dl.get("timeout", 60)))
        except download.DownloadError as exc:
            if exc.unreachable:
                raise SourceMissingError(_missing_message(name, root, dl, str(exc))) from exc
            raise
    elif archive.is_file():
        download.check_file(archive, md5)
    else:
        raise SourceMissingError(_missing_message(name, root, dl, f"datasets.{name}.download.enabled is false"))
    target = download.extract(archive, root / MSD_FOLDER, root=MSD_FOLDER, include=_msd_member, check=scan_msd,
                              stamp={"md5": md5, "url": url})
    if not dl.get("keep_archive", True):
        archive.unlink()
    return target


def _msd_member(rel: str) -> bool:
    """Extract only what the study reads: the labelled training cases and dataset.json."""
    return rel == "dataset.json" or rel.startswith(("imagesTr/", "labelsTr/"))


def _write_provenance(raw_dir: Path, name: str, root: Path, origin: str, dl: dict, manifest: pd.DataFrame):
    from ...io.atomic import write_json

    info = {"dataset": name, "source": "lits", "release": origin, "root": str(root),
            "license": "CC BY-SA 4.0 (Medical Segmentation Decathlon); LiTS terms for the original release",
            "n_cases": int(len(manifest)), "test_cases": [f"liver_{n}" for n in TEST_CASES]}
    if origin == "msd":
        info.update({"url": dl.get("url", MSD_URL), "md5": dl.get("md5", MSD_MD5)})
    write_json(info, Path(raw_dir) / "provenance.json")


def read_case(row: dict, ds_cfg: dict, raw_dir: Path) -> RawCase:
    labels = ds_cfg.get("labels") or LABELS
    lesion, ignore = labels.get("lesion", LABELS["lesion"]), labels.get("ignore") or None
    image_path, label_path = Path(row["image"]), Path(row["mask"])
    if not image_path.is_absolute():
        image_path, label_path = Path(raw_dir) / image_path, Path(raw_dir) / label_path
    return read_nifti_case(row["case_id"], [image_path], label_path, lesion, ignore, MAX_LABEL)
