"""IDRiD part A (lesion segmentation in colour fundus photographs), placed by the user.

IDRiD is distributed by IEEE Dataport (CC BY 4.0) after a free sign-in, so it cannot be fetched
automatically. Under the configured ``path`` put either ``A. Segmentation.zip`` (extracted here safely and
atomically; its MD5 is checked when ``download.md5`` is set) or its extracted ``A. Segmentation/`` folder
(``path`` may also be that folder itself)::

    A. Segmentation/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_NN.jpg       4288 x 2848 RGB
    A. Segmentation/2. All Segmentation Groundtruths/{a. Training Set,b. Testing Set}/
        {1. Microaneurysms,2. Haemorrhages,3. Hard Exudates,4. Soft Exudates}/IDRiD_NN_{MA,HE,EX,SE}.tif

Lesion mask = union of the four lesion types (the optic disc masks, ``5. Optic Disc``, are not lesions).
A mask file missing for an image means that image has none of that type (HE masks exist for 80 images,
SE for 40). Masks are read on their colour: a pixel is lesion when any of R, G, B is non-zero after palette
expansion (the masks are 1-bit palette TIFFs whose index 1 is red; some are RGBA with alpha 255 everywhere,
so alpha is never used). Official split: the training folder (IDRiD_01-54) -> train, the testing folder
(IDRiD_55-81) -> test.

Spacing: config ``spacing`` (units per pixel of the original 4288 x 2848 image); default ``[1, 1]``, so
distances and tolerances are in original-resolution pixels (no pixel pitch is published for IDRiD; see
docs/datasets.md for an estimate in millimetres).
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ...io.images import ImageReadError, read_raster
from .. import download
from . import RawCase, SourceError, SourceMissingError

log = logging.getLogger(__name__)

ARCHIVE = "A. Segmentation.zip"
TOP = "A. Segmentation"
IMAGES = "1. Original Images"
MASKS = "2. All Segmentation Groundtruths"
SPLIT_DIRS = {"a. Training Set": "train", "b. Testing Set": "test"}
LESION_TYPES = {"MA": "1. Microaneurysms", "HE": "2. Haemorrhages", "EX": "3. Hard Exudates", "SE": "4. Soft Exudates"}
LANDING_PAGE = "https://ieee-dataport.org/open-access/indian-diabetic-retinopathy-image-dataset-idrid"
LICENSE = "CC BY 4.0"
EXPECTED = (
    "81 JPEG images 4288 x 2848 (54 in 'a. Training Set', 27 in 'b. Testing Set'); lesion masks "
    "MA 81, HE 80, EX 81, SE 40"
)


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def child(folder: Path, name: str) -> Path | None:
    """The sub-folder of ``folder`` called ``name``, ignoring case and repeated spaces; None if absent."""
    direct = folder / name
    if direct.is_dir():
        return direct
    if not folder.is_dir():
        return None
    for p in folder.iterdir():
        if p.is_dir() and _norm(p.name) == _norm(name):
            return p
    return None


def _missing_message(name: str, root: Path, cause: str = "") -> str:
    because = f" ({cause})" if cause else ""
    return (
        f"data set {name!r} (IDRiD part A): files not found under {root}{because}. Get 'A. Segmentation.zip' "
        f"(Segmentation part) from {LANDING_PAGE} (IEEE Dataport, free sign-in, {LICENSE}); put the zip, or "
        f"its extracted '{TOP}' folder, in {root}. Check: {EXPECTED}; set datasets.{name}.download.md5 to "
        f"have the zip's MD5 checked."
    )


def _zip_root(archive: Path) -> str | None:
    """``TOP`` when every (non-junk) member of the zip lies under it, else None (members at the zip root)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if not download.is_junk(n)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{archive}: truncated or corrupt zip archive ({exc})") from exc
    tops = {n.replace("\\", "/").split("/", 1)[0] for n in names}
    return TOP if tops == {TOP} else None


def locate(name: str, ds_cfg: dict) -> Path:
    """The ``A. Segmentation`` folder: placed, or extracted from the placed zip."""
    root = Path(ds_cfg["path"]).expanduser().resolve()
    if child(root, IMAGES) is not None:
        return root
    folder = child(root, TOP)
    if folder is not None and child(folder, IMAGES) is not None:
        return folder
    archive = root / ARCHIVE
    if archive.is_file():
        dl = ds_cfg.get("download") or {}
        download.check_file(archive, dl.get("md5"), dl.get("size"))
        target = root / TOP
        download.extract(archive, target, root=_zip_root(archive), check=scan, stamp={"md5": dl.get("md5")})
        return target
    cause = "" if root.is_dir() else "the folder does not exist"
    raise SourceMissingError(_missing_message(name, root, cause))


def _files(folder: Path | None, pattern: str) -> dict[str, Path]:
    """{case id: file} for files whose name fully matches ``pattern`` (group 1 = case id), junk skipped."""
    out: dict[str, Path] = {}
    if folder is None:
        return out
    for p in sorted(folder.iterdir()):
        if not p.is_file() or download.is_junk(p.name):
            continue
        match = re.fullmatch(pattern, p.name, flags=re.IGNORECASE)
        if match:
            case = "IDRiD_" + match.group(1)
            if case in out:
                raise SourceError(f"{p}: a second file for {case} (also {out[case].name})")
            out[case] = p
    return out


def scan(seg: Path) -> pd.DataFrame:
    images_root, masks_root = child(seg, IMAGES), child(seg, MASKS)
    if images_root is None:
        raise SourceError(f"{seg}: no '{IMAGES}' folder")
    if masks_root is None:
        raise SourceError(f"{seg}: no '{MASKS}' folder")
    rows = []
    for split_dir, official in SPLIT_DIRS.items():
        image_dir = child(images_root, split_dir)
        if image_dir is None:
            raise SourceError(f"{images_root}: no '{split_dir}' folder")
        images = _files(image_dir, r"IDRiD_(\d+)\.jpe?g")
        gt_dir = child(masks_root, split_dir)
        if gt_dir is None:
            raise SourceError(f"{masks_root}: no '{split_dir}' folder")
        masks = {}
        for kind, folder_name in LESION_TYPES.items():
            folder = child(gt_dir, folder_name)
            if folder is None:
                raise SourceError(f"{gt_dir}: no '{folder_name}' folder")
            masks[kind] = _files(folder, rf"IDRiD_(\d+)_{kind}\.tiff?")
            orphans = sorted(set(masks[kind]) - set(images))
            if orphans:
                raise SourceError(f"{masks[kind][orphans[0]]}: mask without its image {orphans[0]}.jpg in {image_dir}")
        for case in sorted(images):
            present = {k: str(masks[k][case]) if case in masks[k] else "" for k in LESION_TYPES}
            first = next((p for p in present.values() if p), "")
            rows.append(
                {
                    "case_id": case,
                    "image": str(images[case]),
                    "mask": first,
                    "official_split": official,
                    **{k.lower(): v for k, v in present.items()},
                }
            )
    if not rows:
        raise SourceError(f"{images_root}: no IDRiD_NN.jpg images found")
    return pd.DataFrame(rows)


def acquire(name: str, ds_cfg: dict, raw_dir: Path) -> pd.DataFrame:
    seg = locate(name, ds_cfg)
    manifest = scan(seg)
    from ...io.atomic import write_json

    counts = {k: int((manifest[k.lower()] != "").sum()) for k in LESION_TYPES}
    write_json(
        {
            "dataset": name,
            "source": "idrid",
            "license": LICENSE,
            "url": LANDING_PAGE,
            "root": str(seg),
            "n_cases": len(manifest),
            "official_split": manifest["official_split"].value_counts().to_dict(),
            "masks_per_type": counts,
        },
        Path(raw_dir) / "provenance.json",
    )
    log.info("%s: %d IDRiD images, masks per type %s", name, len(manifest), counts)
    return manifest


# -- reading -----------------------------------------------------------------------------------------


def read_binary_mask(path: str | Path) -> np.ndarray:
    """A lesion mask file as bool (H, W): any non-zero colour channel after palette expansion; alpha ignored."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("P", "PA"):
                index = np.asarray(im.getchannel(0) if mode == "PA" else im)
                palette = im.getpalette()
                if palette is None:
                    return index > 0
                colours = np.asarray(palette, np.int64).reshape(-1, 3)
                lut = np.zeros(256, bool)
                lut[: len(colours)] = colours.max(axis=1) > 0
                return lut[index]
            if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
                return np.asarray(im)[..., :3].max(axis=-1) > 0
            if mode == "LA":
                return np.asarray(im)[..., 0] > 0
            if mode in ("1", "L", "I", "F") or mode.startswith("I;"):
                return np.asarray(im) > 0
            return np.asarray(im.convert("RGB")).max(axis=-1) > 0
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot read mask ({exc})") from exc


def read_case(row: dict, ds_cfg: dict, raw_dir: Path) -> RawCase:
    image_path = Path(row["image"])
    try:
        image = read_raster(image_path)
    except ImageReadError as exc:
        raise SourceError(str(exc)) from exc
    if image.ndim == 2:
        image = image[None]
    elif image.ndim == 3 and image.shape[-1] in (3, 4):
        image = np.moveaxis(image[..., :3], -1, 0)
    else:
        raise SourceError(f"{image_path}: expected an RGB image, got shape {image.shape}")
    shape = image.shape[1:]
    mask = np.zeros(shape, bool)
    used = []
    for kind in LESION_TYPES:
        p = str(row.get(kind.lower()) or "")
        if not p:
            continue
        m = read_binary_mask(p)
        if m.shape != shape:
            raise SourceError(f"{p}: mask shape {m.shape} != image shape {shape} of {image_path.name}")
        mask |= m
        used.append(Path(p).name)
    spacing = tuple(float(s) for s in (ds_cfg.get("spacing") or (1.0, 1.0)))
    if len(spacing) != 2:
        raise SourceError(f"IDRiD spacing must have two values (rows, columns), got {list(spacing)}")
    return RawCase(
        row["case_id"],
        image,
        mask.astype(np.uint8),
        spacing,
        None,
        None,
        None,
        source={"image": image_path.name, "masks": used},
    )
