"""Rule dataset_summary: cases and lesions per split and data set, and what the prepare resize cost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...io.atomic import write_csv
from ...io.tables import read_table
from .. import checks
from ..lesions import LESION_COLUMNS, QUARTILE_COLUMNS
from ..prepare import LESION_COUNT_COLUMNS


def run(
    names: list[str],
    datasets: dict,
    split_paths: list,
    lesion_paths: list,
    quartile_paths: list,
    out_path: Path,
    cases_paths: list | None = None,
) -> pd.DataFrame:
    splits = {n: read_table(p, ["case_id", "split"]) for n, p in zip(names, split_paths)}
    les = {n: read_table(p, LESION_COLUMNS) for n, p in zip(names, lesion_paths)}
    quart = {n: read_table(p, QUARTILE_COLUMNS) for n, p in zip(names, quartile_paths)}
    cases = (
        None
        if cases_paths is None
        else {n: read_table(p, ["case_id", "split", *LESION_COUNT_COLUMNS]) for n, p in zip(names, cases_paths)}
    )
    table = checks.dataset_summary(names, datasets, splits, les, quart, cases)
    write_csv(table, out_path)
    return table
