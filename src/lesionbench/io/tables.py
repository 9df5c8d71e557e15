"""Reading the pipeline's CSV tables with a clear error naming the file."""

from __future__ import annotations

import pandas as pd


def read_table(path, columns: list[str], error: type[Exception] = ValueError) -> pd.DataFrame:
    """Read a pipeline CSV (case ids kept as strings, empty cells as ""), raising ``error`` naming the
    file when it cannot be read or lacks any of ``columns``."""
    try:
        table = pd.read_csv(path, dtype={"case_id": str}, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise error(f"{path}: unreadable table ({exc})") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise error(f"{path}: missing columns {missing}")
    return table
