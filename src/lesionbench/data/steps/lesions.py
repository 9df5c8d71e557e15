"""Rule lesions: one row per reference lesion of one data set, and its size-stratum edges."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ...io.atomic import write_csv
from ...io.cases import load_case, read_meta
from ...io.tables import read_table
from .. import lesions as lesion_mod

log = logging.getLogger(__name__)


def run(
    name: str,
    prepared_dir: Path,
    split_path: Path,
    lesions_path: Path,
    quartiles_path: Path,
    edge_rule="test_quartiles",
    threads: int = 1,
):
    """lesions.csv, and quartiles.csv with the size-stratum edges of ``edge_rule`` (``stratification.edges``)."""
    table = read_table(split_path, ["case_id", "split"])
    rows = lesion_mod.lesion_table(
        name, lambda c: load_case(prepared_dir, c, mmap=True, image=False).mask, table, threads=threads
    )
    test_sizes = rows.loc[rows["split"] == "test", "size_fraction"]
    if test_sizes.empty:
        raise lesion_mod.LesionError(
            f"data set {name!r}: no reference lesion in any of the {int((table['split'] == 'test').sum())} test "
            f"cases ({prepared_dir}; reference masks e.g. {_mask_files(prepared_dir, table)}): every voxel is "
            f"background or ignored, so nothing can be evaluated; check the folder and the lesion labels"
        )
    edges = lesion_mod.stratum_edges(rows, edge_rule, dataset=name)
    write_csv(rows, lesions_path)
    write_csv(pd.DataFrame([edges])[lesion_mod.QUARTILE_COLUMNS], quartiles_path)
    log.info("%s: %d lesions, size-stratum edges (%s) %s", name, len(rows), edges["edge_rule"], edges)
    return rows, edges


def _mask_files(prepared_dir, table, n: int = 3) -> list[str]:
    """The source mask files of the first few test cases (for error messages)."""
    ids = table.loc[table["split"] == "test", "case_id"].head(n)
    return [str((read_meta(prepared_dir, c).get("source") or {}).get("mask", c)) for c in ids]
