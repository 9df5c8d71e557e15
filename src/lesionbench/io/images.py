"""Reading and writing source images: PNG/JPEG/TIFF for 2D, NIfTI for 3D.

Palette ("indexed", PIL mode ``P``) PNGs: a palette *mask* is read by palette index, as PASCAL VOC label
maps are (index 0 = background, index k = label k); a palette *image* is read by colour. A palette mask is
refused when reading by index and reading by colour would disagree on what is background (an index other
than 0 painted black, or index 0 painted a colour): such a mask comes out inverted under one of the two
readings, and the file alone cannot say which one its author meant.

NIfTI voxel sizes come from the header's ``pixdim``; a zero or negative spatial entry is refused (nibabel
would silently turn 0 into 1 mm and a negative size into its absolute value).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from .atomic import atomic_path

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


log = logging.getLogger("lesionbench.io")


class ImageReadError(ValueError):
    """A source file cannot be read as an image; the message names the file."""


def is_nifti(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _refuse_stacks(im, path) -> None:
    """A multi-page file (a TIFF stack of slices, an animation) would otherwise be read as its first page."""
    pages = int(getattr(im, "n_frames", 1))
    if pages > 1:
        raise ImageReadError(
            f"{path}: holds {pages} pages (e.g. a 3D TIFF stack); images and masks in PNG/TIFF/JPEG are read "
            f"as single 2D images, so a stack would be read as its first page. Store volumes as NIfTI "
            f"(.nii.gz), which also carries their voxel spacing"
        )


def read_raster(path: str | os.PathLike, palette: str = "index") -> np.ndarray:
    """A 2D image as (H, W) or (H, W, C). A palette image gives its indices (``palette="index"``) or its
    RGB(A) colours (``palette="colour"``)."""
    from PIL import Image

    if palette not in ("index", "colour"):
        raise ValueError(f"palette must be 'index' or 'colour', got {palette!r}")
    try:
        with Image.open(path) as im:
            _refuse_stacks(im, path)
            im.load()
            if palette == "colour" and im.mode in ("P", "PA"):
                return np.asarray(im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB"))
            return np.asarray(im)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc})") from exc


def read_label_raster(path: str | os.PathLike) -> np.ndarray:
    """A 2D mask as stored: grey values, RGB(A) colours, or - for a palette PNG - palette indices.

    A palette mask is read by index only when its palette agrees with that reading: index 0 is black and
    every other index used in the image is not black. Otherwise :class:`ImageReadError` names the file,
    the disagreeing indices and their colours, and how to fix the file.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            _refuse_stacks(im, path)
            im.load()
            if im.mode not in ("P", "PA"):
                return np.asarray(im)
            indices = np.asarray(im.getchannel(0) if im.mode == "PA" else im)
            colours = np.asarray(im.getpalette("RGB") or [], dtype=np.int64).reshape(-1, 3)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc})") from exc
    disagree = []
    for index in np.unique(indices).tolist():
        colour = tuple(int(c) for c in colours[index]) if index < len(colours) else (0, 0, 0)
        black = colour == (0, 0, 0)
        if (index == 0) != black:
            disagree.append(f"index {index} = colour {colour}")
    if disagree:
        raise ImageReadError(
            f"{path}: palette PNG whose palette contradicts its indices ({'; '.join(disagree)}): masks are "
            f"read by palette index (index 0 = background, as PASCAL VOC), but read by colour this mask "
            f"would have a different background, e.g. inverted. Save it as a greyscale label map "
            f"(0 = background), or reorder the palette so index 0 is black and no other index is black"
        )
    log.info("%s: palette PNG mask, read by palette index (index 0 = background); palette and indices agree", path)
    return indices


def write_png(array: np.ndarray, path: str | os.PathLike) -> None:
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Return (data in file order, 4x4 affine, voxel spacing in mm) of a NIfTI file."""
    try:
        img = _load_nifti(path)
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise ImageReadError(f"{path}: cannot read NIfTI ({exc})") from exc
    spacing = nifti_spacing(img, path, min(data.ndim, 3))
    if data.ndim > 3:
        spacing += tuple(float(z) for z in img.header.get_zooms()[3 : data.ndim])
    return data, np.asarray(img.affine, float), spacing


def _load_nifti(path: str | os.PathLike) -> SpatialImage:
    """The nibabel image of a NIfTI file. A single-file ``.nii.gz`` is decompressed whole by ISA-L
    (``isal.igzip``: the same bytes, about three times faster than the zlib stream nibabel reads) and parsed
    from memory; anything else (plain ``.nii``, a header/image pair) goes through ``nibabel.load``."""
    import nibabel as nib

    if str(path).lower().endswith(".gz"):
        from isal import igzip

        raw = igzip.decompress(Path(path).read_bytes())
        for klass in (nib.Nifti1Image, nib.Nifti2Image):
            size = klass.header_class.sizeof_hdr
            if klass.header_class.may_contain_header(raw[:size]):
                single_file = klass.header_class(raw[:size], check=False)["magic"] in (b"n+1", b"n+2")
                if single_file:
                    return klass.from_bytes(raw)
    return cast("SpatialImage", nib.load(str(path)))  # nibabel types load() as the non-spatial base class


def nifti_spacing(img, path: str | os.PathLike, n: int = 3) -> tuple[float, ...]:
    """The first ``n`` voxel sizes of a loaded NIfTI image ``img`` read from ``path``, as the file states them.

    nibabel repairs ``pixdim`` on load (0 -> 1, negative -> absolute value) with only an unnamed warning;
    the stored header is read again here, and a zero, negative or non-finite size is an error naming the
    file, the axis and the value.
    """
    import nibabel as nib

    try:
        with nib.openers.ImageOpener(str(path)) as fh:
            stored = type(img.header).from_fileobj(fh, check=False)
        pixdim = [float(v) for v in stored["pixdim"][1 : 1 + n]]
    except Exception as exc:  # pragma: no cover - the file was just loaded by nibabel
        raise ImageReadError(f"{path}: cannot read the NIfTI header ({exc})") from exc
    bad = [f"pixdim[{i + 1}] = {v:g}" for i, v in enumerate(pixdim) if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ImageReadError(
            f"{path}: voxel size {', '.join(bad)} in the NIfTI header (pixdim[1..{n}] = "
            f"{[float(f'{v:g}') for v in pixdim]}): voxel sizes must be positive mm; distances and lesion "
            f"sizes would be wrong. Write the true spacing into the header (e.g. nibabel "
            f"header.set_zooms, or fslchpixdim) and run again"
        )
    return tuple(pixdim)


def write_nifti(
    array: np.ndarray, affine: np.ndarray | None, path: str | os.PathLike, spacing: tuple[float, ...] | None = None
) -> None:
    """Write ``array`` (file order) with ``affine`` (or a diagonal one from ``spacing``) atomically."""
    import nibabel as nib

    if affine is None:
        affine = np.diag(list(spacing or (1.0,) * array.ndim) + [1.0])
    img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, float))
    if spacing is not None:
        img.header.set_zooms(tuple(float(s) for s in spacing))
    suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
    with atomic_path(path, suffix=suffix) as tmp:
        nib.save(img, str(tmp))


def suffix_of(path: str | os.PathLike) -> str:
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix
