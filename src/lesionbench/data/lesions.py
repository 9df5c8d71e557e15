"""Lesion enumeration and size quartiles (docs/contracts.md ``lesions.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..components import component_voxels, label_components, largest_slice_areas

LESION_COLUMNS = ["dataset", "case_id", "split", "lesion_id", "voxels", "size_fraction", "slice_area", "bbox"]
QUARTILE_COLUMNS = ["dataset", "n_lesions", "min", "q25", "q50", "q75", "max"]
QUARTILES = ("Q1", "Q2", "Q3", "Q4")


class LesionError(ValueError):
    pass


def enumerate_lesions(mask: np.ndarray) -> pd.DataFrame:
    """One row per connected component of ``mask``: lesion_id, voxels, size_fraction, slice_area, bbox.

    size_fraction = slice_area / (H*W), where slice_area is the lesion's pixel count in 2D and, for volumes,
    its largest area in any slice along axis 0 (the slice axis of prepared volumes).
    """
    labels, n = label_components(mask)
    voxels = component_voxels(labels, n)
    areas = largest_slice_areas(labels, n)
    plane = mask.shape[-2] * mask.shape[-1]
    boxes = ndimage.find_objects(labels, max_label=n)
    return pd.DataFrame({
        "lesion_id": np.arange(1, n + 1, dtype=np.int64),
        "voxels": voxels,
        "size_fraction": areas / float(plane),
        "slice_area": areas,
        "bbox": [",".join(f"{s.start}:{s.stop}" for s in box) for box in boxes],
    })


def quartile_edges(size_fractions, dataset: str = "") -> dict:
    """Edges of the size quartiles (numpy linear percentiles) over the given lesion size fractions."""
    values = np.asarray(size_fractions, float)
    if values.size == 0:
        raise LesionError(f"data set {dataset!r}: no test-split reference lesions, so size quartiles are "
                          f"undefined; add cases with lesions to the test split")
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return {"dataset": dataset, "n_lesions": int(values.size), "min": float(values.min()), "q25": float(q25),
            "q50": float(q50), "q75": float(q75), "max": float(values.max())}


def quartile_index(size_fraction, edges: dict) -> np.ndarray:
    """Quartile index 0..3 (Q1..Q4) per size: Q1 if s <= q25, Q2 if s <= q50, Q3 if s <= q75, else Q4.

    Sizes outside the test range fall in Q1 or Q4 (false-positive lesions are sized this way too).
    """
    s = np.atleast_1d(np.asarray(size_fraction, float))
    return np.searchsorted([edges["q25"], edges["q50"], edges["q75"]], s, side="left").astype(np.int64)


def assign_quartile(size_fraction, edges: dict) -> np.ndarray:
    """Quartile label ("Q1".."Q4") per size, by the rule of ``quartile_index``."""
    return np.asarray(QUARTILES, dtype=object)[quartile_index(size_fraction, edges)]


def lesion_table(dataset: str, masks, split: pd.DataFrame) -> pd.DataFrame:
    """Lesion rows for every case; ``masks(case_id)`` returns the case's binary mask."""
    parts = []
    for case_id, split_name in zip(split["case_id"], split["split"]):
        rows = enumerate_lesions(np.asarray(masks(case_id)))
        rows.insert(0, "split", split_name)
        rows.insert(0, "case_id", case_id)
        rows.insert(0, "dataset", dataset)
        parts.append(rows)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LESION_COLUMNS)
    return table[LESION_COLUMNS].sort_values(["case_id", "lesion_id"]).reset_index(drop=True)
