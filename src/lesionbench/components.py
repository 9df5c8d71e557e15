"""Lesions as connected components: the one labelling and size definition used by every stage.

Connectivity is full (8 in 2D, 26 in 3D) everywhere (docs/contracts.md, ``lesions.csv``).
"""

from __future__ import annotations

from typing import Literal

import cc3d
import numpy as np

FULL_CONNECTIVITY: dict[int, Literal[8, 26]] = {2: 8, 3: 26}


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the connected components of a binary 2D/3D mask with full connectivity (8 in 2D, 26 in 3D).

    Returns (labels, n): labels is uint32 with 0 = background and 1..n. The numbering is that of the
    labelling library (connected-components-3d), deterministic for a given mask and library version: the
    pinned version numbers components in raster (C) order of their first voxel, in 2D and 3D; other versions
    number 2D components by the first 2x2 pixel block (blocks at even indices, in C order) holding one of
    their pixels. No caller relies on raster order: lesion ids only have to be reproducible, and
    ``metrics.parts.find_parts`` detects the rule (``numbering_rule``) to number its crops the same way.
    """
    mask = np.asarray(mask)
    if mask.ndim not in FULL_CONNECTIVITY:
        raise ValueError(f"mask must be 2D or 3D, got shape {mask.shape}")
    # cc3d 4.1 mislabels some bool inputs (background pixels labelled, crashes on tiny 3D shapes), so it
    # always receives uint8 0/1 (a view of a contiguous bool array: no copy).
    binary = np.ascontiguousarray(mask if mask.dtype == bool else mask != 0).view(np.uint8)
    labels, n = cc3d.connected_components(binary, connectivity=FULL_CONNECTIVITY[mask.ndim],
                                          return_N=True, out_dtype=np.uint32)
    return labels, int(n)


def component_voxels(labels: np.ndarray, n: int) -> np.ndarray:
    """Voxel count of components 1..n (index i holds component i+1)."""
    return np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.int64)


def largest_slice_areas(labels: np.ndarray, n: int) -> np.ndarray:
    """Per component 1..n: its area in pixels, in 2D; for volumes its largest area in any slice along axis 0."""
    if labels.ndim == 2:
        return component_voxels(labels, n)
    areas = np.zeros(n, np.int64)
    for k in range(labels.shape[0]):
        counts = np.bincount(labels[k].ravel(), minlength=n + 1)[1:]
        np.maximum(areas, counts, out=areas)
    return areas


def size_fractions(labels: np.ndarray, n: int) -> np.ndarray:
    """Lesion-to-image area fraction of components 1..n (docs/contracts.md, ``lesions.csv``).

    2D: pixels / (H*W). 3D: largest axial (axis 0) slice area of the lesion / (H*W).
    """
    plane = labels.shape[-2] * labels.shape[-1]
    return largest_slice_areas(labels, n) / float(plane)
