"""Rule acquire: the source adapter's files and the raw manifest of one data set."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ...io.atomic import write_csv
from ..manifest import MANIFEST_COLUMNS
from ..sources import get_adapter

log = logging.getLogger(__name__)


def run(name: str, acquire_cfg: dict, raw_dir: Path, manifest_path: Path) -> pd.DataFrame:
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    manifest = get_adapter(acquire_cfg["source"]).acquire(name, acquire_cfg, raw_dir)
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"source {acquire_cfg['source']!r} returned a manifest without {missing}")
    manifest = manifest.sort_values("case_id").reset_index(drop=True)
    write_csv(manifest, manifest_path)
    log.info("%s: %d cases acquired", name, len(manifest))
    return manifest
