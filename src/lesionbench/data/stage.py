"""File-level steps of the data stage, one function per rule (the rule scripts only call these)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..io.atomic import write_csv, write_json
from ..io.cases import load_case
from ..io.tables import read_table
from . import checks
from . import lesions as lesion_mod
from .prepare import LESION_COUNT_COLUMNS, prepare_dataset
from .sources import get_adapter
from .split import make_split

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["case_id", "image", "mask", "official_split"]


def acquire(name: str, acquire_cfg: dict, raw_dir: Path, manifest_path: Path) -> pd.DataFrame:
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


def split(name: str, split_cfg: dict, manifest_path: Path, split_path: Path) -> pd.DataFrame:
    manifest = read_table(manifest_path, MANIFEST_COLUMNS)
    table = make_split(manifest, split_cfg, where=str(manifest_path))
    write_csv(table, split_path)
    log.info("%s: split %s", name, table["split"].value_counts().to_dict())
    return table


def prepare(
    name: str,
    prepare_cfg: dict,
    manifest_path: Path,
    split_path: Path,
    raw_dir: Path,
    prepared_dir: Path,
    cases_path: Path,
) -> pd.DataFrame:
    manifest = read_table(manifest_path, MANIFEST_COLUMNS)
    table = read_table(split_path, ["case_id", "split"])
    return prepare_dataset(name, prepare_cfg, manifest, table, Path(raw_dir), Path(prepared_dir), Path(cases_path))


def lesions(
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
    from ..io.cases import read_meta

    ids = table.loc[table["split"] == "test", "case_id"].head(n)
    return [str((read_meta(prepared_dir, c).get("source") or {}).get("mask", c)) for c in ids]


def validate(
    name: str,
    prepared_dir: Path,
    split_path: Path,
    cases_path: Path,
    lesions_path: Path,
    quartiles_path: Path,
    report_path: Path,
    all_test: bool = False,
    threads: int = 1,
) -> dict:
    report = checks.validate_dataset(
        name,
        Path(prepared_dir),
        read_table(split_path, ["case_id", "split"]),
        read_table(cases_path, ["case_id", "split"]),
        read_table(lesions_path, lesion_mod.LESION_COLUMNS),
        read_table(quartiles_path, lesion_mod.QUARTILE_COLUMNS),
        all_test=all_test,
        threads=threads,
    )
    write_json(report, report_path)
    log.info("%s: validation passed %s", name, report["cases"])
    return report


def summary(
    names: list[str],
    datasets: dict,
    split_paths: list,
    lesion_paths: list,
    quartile_paths: list,
    out_path: Path,
    cases_paths: list | None = None,
) -> pd.DataFrame:
    splits = {n: read_table(p, ["case_id", "split"]) for n, p in zip(names, split_paths)}
    les = {n: read_table(p, lesion_mod.LESION_COLUMNS) for n, p in zip(names, lesion_paths)}
    quart = {n: read_table(p, lesion_mod.QUARTILE_COLUMNS) for n, p in zip(names, quartile_paths)}
    cases = (
        None
        if cases_paths is None
        else {n: read_table(p, ["case_id", "split", *LESION_COUNT_COLUMNS]) for n, p in zip(names, cases_paths)}
    )
    table = checks.dataset_summary(names, datasets, splits, les, quart, cases)
    write_csv(table, out_path)
    return table
