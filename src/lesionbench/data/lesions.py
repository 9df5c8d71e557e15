"""Lesion enumeration and size strata (docs/contracts.md ``lesions.csv``, ``quartiles.csv``).

Size strata Q1..Q4 are cut at three edges ``q25 < q50 < q75`` (``Q1: s <= q25``, ..., ``Q4: s > q75``). Where the
edges come from is the config's ``stratification.edges`` rule (``stratum_edges``):

- ``test_quartiles`` (the study's rule): numpy linear quartiles of the test-split reference lesion sizes;
- ``train_quartiles``: the same quartiles of the training-split reference lesion sizes, so the bins do not
  depend on the data they are evaluated on;
- a list of three increasing size fractions in (0, 1]: fixed edges, the same for every data set.

Whatever the rule, ``n_lesions``, ``min`` and ``max`` describe the test-split lesions (the ones stratified), and
``edge_lesions`` counts the lesions the edges were computed from (0 for fixed edges).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..components import label_components, largest_slice_areas
from ..parallel import map_cases

LESION_COLUMNS = ["dataset", "case_id", "split", "lesion_id", "voxels", "size_fraction", "slice_area", "bbox"]
QUARTILE_COLUMNS = ["dataset", "edge_rule", "edge_lesions", "n_lesions", "min", "q25", "q50", "q75", "max"]
QUARTILES = ("Q1", "Q2", "Q3", "Q4")
EDGE_RULES = ("test_quartiles", "train_quartiles")
FIXED_RULE = "fixed"  # the edge_rule written when the config gives a list of edges


class LesionError(ValueError):
    pass


def enumerate_lesions(mask: np.ndarray) -> pd.DataFrame:
    """One row per connected component of ``mask``: lesion_id, voxels, size_fraction, slice_area, bbox.

    size_fraction = slice_area / (H*W), where slice_area is the lesion's pixel count in 2D and, for volumes,
    its largest area in any slice along axis 0 (the slice axis of prepared volumes).
    """
    labels, n = label_components(mask)
    plane = mask.shape[-2] * mask.shape[-1]
    from scipy import ndimage  # imported here: the statistics import this module for its size strata

    boxes = ndimage.find_objects(labels, max_label=n)
    # Counted inside each lesion's bounding box: one pass over the volume (find_objects), then work in
    # proportion to the lesion sizes instead of a histogram over every voxel of every slice.
    voxels = np.zeros(n, np.int64)
    areas = np.zeros(n, np.int64)
    for i, box in enumerate(boxes):
        inside = (labels[box] == i + 1).view(np.uint8)
        voxels[i] = int(np.count_nonzero(inside))
        areas[i] = largest_slice_areas(inside, 1)[0]
    return pd.DataFrame(
        {
            "lesion_id": np.arange(1, n + 1, dtype=np.int64),
            "voxels": voxels,
            "size_fraction": areas / float(plane),
            "slice_area": areas,
            "bbox": [",".join(f"{s.start}:{s.stop}" for s in box) for box in boxes],
        }
    )


def quartile_edges(size_fractions, dataset: str = "") -> dict:
    """Edges of the size quartiles (numpy linear percentiles) over the given lesion size fractions."""
    values = np.asarray(size_fractions, float)
    if values.size == 0:
        raise LesionError(
            f"data set {dataset!r}: no test-split reference lesions, so size quartiles are "
            f"undefined; add cases with lesions to the test split"
        )
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return {
        "dataset": dataset,
        "n_lesions": int(values.size),
        "min": float(values.min()),
        "q25": float(q25),
        "q50": float(q50),
        "q75": float(q75),
        "max": float(values.max()),
    }


def parse_edge_rule(rule) -> tuple[str, tuple[float, float, float] | None]:
    """``(rule name, fixed edges or None)`` of a ``stratification.edges`` value; ValueError if malformed."""
    if isinstance(rule, str):
        if rule not in EDGE_RULES:
            raise LesionError(
                f"stratification.edges must be one of {EDGE_RULES} or a list of three size fractions, got {rule!r}"
            )
        return rule, None
    try:
        fixed = tuple(float(x) for x in rule)
    except (TypeError, ValueError):
        raise LesionError(
            f"stratification.edges must be one of {EDGE_RULES} or a list of three size fractions, got {rule!r}"
        ) from None
    if len(fixed) != 3 or not all(0 < x <= 1 for x in fixed) or not (fixed[0] < fixed[1] < fixed[2]):
        raise LesionError(
            f"fixed stratification.edges must be three strictly increasing size fractions in (0, 1], got {list(rule)!r}"
        )
    return FIXED_RULE, fixed


def stratum_edges(lesions: pd.DataFrame, rule="test_quartiles", dataset: str = "") -> dict:
    """The quartiles.csv row of a data set: edges by ``rule`` (module docstring) and the range of the
    test-split lesion sizes. ``lesions``: its lesions.csv (columns split, size_fraction)."""
    name, fixed = parse_edge_rule(rule)
    test = lesions.loc[lesions["split"] == "test", "size_fraction"].to_numpy(float)
    row = quartile_edges(test, dataset)  # raises when the test split has no lesion
    if name == "train_quartiles":
        train = lesions.loc[lesions["split"] == "train", "size_fraction"].to_numpy(float)
        if train.size == 0:
            raise LesionError(
                f"data set {dataset!r}: stratification.edges is train_quartiles but the training "
                f"split has no reference lesions; use test_quartiles or fixed edges"
            )
        edges, n_source = np.percentile(train, [25, 50, 75]), int(train.size)
    elif name == FIXED_RULE:
        edges, n_source = fixed, 0
    else:
        edges, n_source = (row["q25"], row["q50"], row["q75"]), int(test.size)
    row.update(
        {
            "edge_rule": name,
            "edge_lesions": n_source,
            "q25": float(edges[0]),
            "q50": float(edges[1]),
            "q75": float(edges[2]),
        }
    )
    return {k: row[k] for k in QUARTILE_COLUMNS}


def quartile_index(size_fraction, edges: dict) -> np.ndarray:
    """Quartile index 0..3 (Q1..Q4) per size: Q1 if s <= q25, Q2 if s <= q50, Q3 if s <= q75, else Q4.

    Sizes below q25 fall in Q1 and above q75 in Q4, whatever the rule that set the edges (false-positive
    lesions are sized this way too).
    """
    s = np.atleast_1d(np.asarray(size_fraction, float))
    return np.searchsorted([edges["q25"], edges["q50"], edges["q75"]], s, side="left").astype(np.int64)


def assign_quartile(size_fraction, edges: dict) -> np.ndarray:
    """Quartile label ("Q1".."Q4") per size, by the rule of ``quartile_index``."""
    return np.asarray(QUARTILES, dtype=object)[quartile_index(size_fraction, edges)]


def lesion_table(dataset: str, masks, split: pd.DataFrame, threads: int = 1) -> pd.DataFrame:
    """Lesion rows for every case; ``masks(case_id)`` returns the case's binary mask (cases labelled on up to
    ``threads`` threads)."""

    def case_rows(case: tuple[str, str]) -> pd.DataFrame:
        case_id, split_name = case
        rows = enumerate_lesions(np.asarray(masks(case_id)))
        rows.insert(0, "split", split_name)
        rows.insert(0, "case_id", case_id)
        rows.insert(0, "dataset", dataset)
        return rows

    parts = map_cases(case_rows, zip(split["case_id"], split["split"]), threads)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LESION_COLUMNS)
    return table[LESION_COLUMNS].sort_values(["case_id", "lesion_id"]).reset_index(drop=True)
