"""Rule validate_data: the checkpoint checks of one prepared data set (fails naming the bad case)."""

from __future__ import annotations

import logging
from pathlib import Path

from ...io.atomic import write_json
from ...io.tables import read_table
from .. import checks
from ..lesions import LESION_COLUMNS, QUARTILE_COLUMNS

log = logging.getLogger(__name__)


def run(
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
        read_table(lesions_path, LESION_COLUMNS),
        read_table(quartiles_path, QUARTILE_COLUMNS),
        all_test=all_test,
        threads=threads,
    )
    write_json(report, report_path)
    log.info("%s: validation passed %s", name, report["cases"])
    return report
