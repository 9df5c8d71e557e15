"""Rule prepare: every split case of one data set binarized, normalized (optionally resized) and stored."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...io.tables import read_table
from ..manifest import MANIFEST_COLUMNS
from ..prepare import prepare_dataset


def run(
    name: str,
    prepare_cfg: dict,
    manifest_path: Path,
    split_path: Path,
    raw_dir: Path,
    prepared_dir: Path,
    cases_path: Path,
    threads: int = 1,
) -> pd.DataFrame:
    manifest = read_table(manifest_path, MANIFEST_COLUMNS)
    table = read_table(split_path, ["case_id", "split"])
    return prepare_dataset(
        name, prepare_cfg, manifest, table, Path(raw_dir), Path(prepared_dir), Path(cases_path), threads
    )
