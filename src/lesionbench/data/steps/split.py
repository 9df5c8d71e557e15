"""Rule split: the deterministic train/val/test assignment of one data set, from its raw manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ...io.atomic import write_csv
from ...io.tables import read_table
from ..manifest import MANIFEST_COLUMNS
from ..split import make_split

log = logging.getLogger(__name__)


def run(name: str, split_cfg: dict, manifest_path: Path, split_path: Path) -> pd.DataFrame:
    manifest = read_table(manifest_path, MANIFEST_COLUMNS)
    table = make_split(manifest, split_cfg, where=str(manifest_path))
    write_csv(table, split_path)
    log.info("%s: split %s", name, table["split"].value_counts().to_dict())
    return table
