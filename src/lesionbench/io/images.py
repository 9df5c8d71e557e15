"""Reading and writing source images: PNG/JPEG/TIFF for 2D, NIfTI for 3D."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageReadError(ValueError):
    """A source file cannot be read as an image; the message names the file."""


def is_nifti(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def read_raster(path: str | os.PathLike) -> np.ndarray:
    """A 2D image as (H, W) or (H, W, C). Palette images are returned as their index values."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc})") from exc


def write_png(array: np.ndarray, path: str | os.PathLike) -> None:
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Return (data in file order, 4x4 affine, voxel spacing in mm) of a NIfTI file."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise ImageReadError(f"{path}: cannot read NIfTI ({exc})") from exc
    spacing = tuple(float(z) for z in img.header.get_zooms()[: data.ndim])
    return data, np.asarray(img.affine, float), spacing


def write_nifti(array: np.ndarray, affine: np.ndarray | None, path: str | os.PathLike,
                spacing: tuple[float, ...] | None = None) -> None:
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
