"""The verdict calibration's power table, committed with the package (``verdict_power.csv``).

``benchmarks/verdict_calibration.py`` simulates studies with a planted small-lesion boundary effect and
writes, per finding, planted effect and number of common Q1 lesions, the share of studies whose decision
rule says supported. The claim check reads it to say how many common Q1 lesions would decide an
inconclusive row: the smallest count at which the power for the paper's effect (a 41.3 % HD95 spread among
the top models in Q1) reaches 80 %. A committed table keeps the claim rule at seconds; the benchmark
rewrites it (``--write-power-table``) when the tests or their defaults change.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

PAPER_EFFECT_PCT = 41.3
TARGET_POWER = 0.8
POWER_TABLE = "verdict_power.csv"
POWER_COLUMNS = ("finding", "n_common_q1_lesions", "effect", "n_sims", "supported_rate")


@cache
def power_table() -> pd.DataFrame:
    with resources.files("lesionbench.stats").joinpath(POWER_TABLE).open() as f:
        table = pd.read_csv(f)
    missing = [c for c in POWER_COLUMNS if c not in table]
    if missing:
        raise ValueError(f"lesionbench/stats/{POWER_TABLE}: missing columns {missing}")
    return table


def lesions_needed(finding: str, table: pd.DataFrame | None = None) -> int | None:
    """Smallest calibrated number of common Q1 lesions with >= 80 % power for the paper's effect (None if the
    calibration reaches it at no count it ran, or has no row for the finding)."""
    t = power_table() if table is None else table
    rows = t[(t.finding == finding) & ((t.effect - PAPER_EFFECT_PCT).abs() < 1e-6)].sort_values("n_common_q1_lesions")
    reached = rows[rows.supported_rate >= TARGET_POWER]
    return int(reached.n_common_q1_lesions.iloc[0]) if len(reached) else None
