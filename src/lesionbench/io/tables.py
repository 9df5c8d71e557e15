"""Reading the pipeline's CSV tables with a clear error naming the file: the one table reader of every stage."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd


def read_table(
    path: str | os.PathLike,
    columns: list[str] | tuple[str, ...],
    error: type[Exception] = ValueError,
    *,
    strings: Mapping[str, type] | None = None,
    empty_as_nan: bool = False,
) -> pd.DataFrame:
    """Read a pipeline CSV, raising ``error`` naming the file when it is missing, cannot be read or lacks any
    of ``columns``.

    Identifier columns are read as strings (``strings``: column -> str; default ``case_id``). Empty cells are
    kept as "" (a manifest's empty ``official_split``), or, with ``empty_as_nan``, read as NaN together with
    "nan"/"NaN" (the statistics, which then refuse a missing value where one is required).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: missing")
    dtype = dict(strings) if strings is not None else {"case_id": str}
    na_values = ["", "nan", "NaN"] if empty_as_nan else None
    try:
        table: pd.DataFrame = pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=na_values)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise error(f"{path}: unreadable table ({exc})") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise error(f"{path}: missing columns {missing} (has {list(table.columns)})")
    return table
