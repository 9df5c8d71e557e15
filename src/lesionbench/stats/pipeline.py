"""Entry points of the analysis rules: read the inputs, build one study table, write it atomically.

Each function takes the rule's input file lists (per-case and per-lesion tables of every data set x model x
seed; split.csv, lesions.csv and quartiles.csv of every data set) and writes its outputs; the rule scripts
only pass ``snakemake`` fields through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import write_csv
from ..io.cases import read_meta
from .aggregate import OPTIONAL_COLUMNS, all_estimates, ranking_estimates, size_stratified_metrics, small_lesion_metrics
from .bootstrap import directional_robustness
from .claim import CLAIM_OPTIONAL, claim_check
from .merged import merged_recall_sums
from .overall import overall_metrics
from .ranking import ranking_reversals, reversal_summary
from .sanity import read_small_lesion_table, sanity_checks
from .strata import case_sums, pool
from .summary import SUMMARY_OPTIONAL, dataset_table, study_summary
from .tables import POOLED, StudyTableError, load_study

log = logging.getLogger("lesionbench")


@dataclass
class StudyInputs:
    per_case: list = field(default_factory=list)
    per_lesion: list = field(default_factory=list)
    split: list = field(default_factory=list)
    lesions: list = field(default_factory=list)
    quartiles: list = field(default_factory=list)

    @classmethod
    def from_snakemake(cls, inputs) -> StudyInputs:
        return cls(
            *(list(getattr(inputs, name)) for name in ("per_case", "per_lesion", "split", "lesions", "quartiles"))
        )


def load_tables(inputs: StudyInputs) -> dict:
    """{dataset: DatasetTables} of every data set in the inputs, checked."""
    study = load_study(inputs.per_case, inputs.per_lesion, inputs.split, inputs.lesions, inputs.quartiles)
    for name, t in study.items():
        log.info(
            "%s: %d test cases, %d test lesions, models %s, seeds %s",
            name,
            len(t.test_cases),
            len(t.reference),
            list(t.models),
            list(t.seeds),
        )
    return study


def load_sums(inputs: StudyInputs) -> dict:
    """{dataset: CaseSums} of every data set in the inputs."""
    return {name: case_sums(t) for name, t in load_tables(inputs).items()}


def write_table(df: pd.DataFrame, path, optional=OPTIONAL_COLUMNS) -> None:
    """Write a study table after checking it holds no NaN (an undefined cell is a bug, never an output). The
    one exception: the ``optional`` columns (``value`` and ``seed_sd`` by default) of a row whose stratum
    holds no lesion of its set (``n_lesions`` 0) are left empty."""
    nan = df.isna()
    if "n_lesions" in df:
        empty_set = (df["n_lesions"] == 0).to_numpy()
        for col in optional:
            if col in nan:
                nan.loc[empty_set, col] = False
    bad = nan.any()
    if bad.any():
        raise StudyTableError(f"{path}: refusing to write NaN in columns {list(bad[bad].index)}")
    write_csv(df, path)
    log.info("%s: %d rows", path, len(df))


def min_lesions(claim: dict) -> int:
    """``claim.min_lesions``: fewer lesions of a set in a stratum than this flag it insufficient_lesions."""
    try:
        return int(claim["min_lesions"])
    except KeyError:
        raise StudyTableError("config claim block lacks 'min_lesions'") from None


def statistics_settings(statistics: dict) -> tuple[int, int, float]:
    try:
        return (
            int(statistics["bootstrap_resamples"]),
            int(statistics["bootstrap_seed"]),
            float(statistics["confidence"]),
        )
    except KeyError as exc:
        raise StudyTableError(f"config statistics block lacks {exc.args[0]!r}") from None


def write_overall_metrics(inputs: StudyInputs, output, statistics: dict) -> pd.DataFrame:
    resamples, seed, confidence = statistics_settings(statistics)
    study = load_tables(inputs)
    df = overall_metrics(
        {n: case_sums(t) for n, t in study.items()},
        resamples,
        seed,
        confidence,
        merged={n: merged_recall_sums(t) for n, t in study.items()},
    )
    write_table(df, output)
    return df


def write_size_stratified(inputs: StudyInputs, stratified_output, small_output, claim: dict) -> pd.DataFrame:
    df = size_stratified_metrics(load_sums(inputs), min_lesions(claim))
    write_table(df, stratified_output)
    write_table(small_lesion_metrics(df), small_output)
    return df


def write_ranking(inputs: StudyInputs, ranking_output, summary_output, claim: dict) -> pd.DataFrame:
    df = ranking_reversals(ranking_estimates(load_sums(inputs), min_lesions(claim)))
    write_table(df, ranking_output)
    write_table(reversal_summary(df), summary_output)
    return df


def write_robustness(inputs: StudyInputs, output, statistics: dict, claim: dict) -> pd.DataFrame:
    resamples, seed, confidence = statistics_settings(statistics)
    top_k = int(statistics["top_k"])  # default in the schema
    df = directional_robustness(load_sums(inputs), resamples, seed, confidence, top_k, min_lesions(claim))
    write_table(df, output)
    return df


CLAIM_KEYS = (
    "min_lesions",
    "dice_tie",
    "seed_sd_factor",
    "min_boundary_spread_pct",
    "separation_ratio",
    "alpha",
    "permutations",
    "permutation_seed",
    "resolution_floor_voxels",
)


def claim_settings(claim: dict) -> dict:
    missing = [k for k in CLAIM_KEYS if k not in claim]
    if missing:
        raise StudyTableError(f"config claim block lacks {missing}")
    return {k: claim[k] for k in CLAIM_KEYS}


def write_study_summary(
    inputs: StudyInputs, summary_output, datasets_output, statistics: dict, claim: dict
) -> pd.DataFrame:
    """The study summary and the data-set table, from one load of the per-case sums."""
    tables = load_tables(inputs)
    sums = {name: case_sums(t) for name, t in tables.items()}
    estimates = all_estimates(sums, min_lesions(claim))
    df = study_summary(estimates, int(statistics["top_k"]))
    write_table(df, summary_output, optional=SUMMARY_OPTIONAL)
    write_table(dataset_table(tables, sums), datasets_output)
    return df


def write_sanity_checks(inputs: StudyInputs, provenance_paths, small_lesion_path, output, claim: dict) -> pd.DataFrame:
    df = sanity_checks(
        inputs.per_case,
        inputs.per_lesion,
        inputs.split,
        inputs.lesions,
        inputs.quartiles,
        provenance_paths,
        read_small_lesion_table(small_lesion_path),
        min_lesions(claim),
    )
    write_table(df, output)
    for r in df[df.status != "pass"].itertuples():
        log.warning("sanity check %s of %s: %s (%s)", r.check, r.dataset, r.status, r.figures)
    return df


def in_plane_spacing(prepared, case_ids) -> float:
    """Median over the cases of the finest in-plane spacing (mm): both axes of a 2D case, the last two of a
    volume (slice axis first), read from the prepared cases' meta.json."""
    per_case = []
    for case_id in case_ids:
        spacing = read_meta(prepared, case_id)["spacing"]
        per_case.append(min(float(s) for s in spacing[-2:]))
    if not per_case:
        raise StudyTableError(f"{prepared}: no test case to read the voxel spacing from")
    return float(np.median(per_case))


def resolution_floors(tables: dict, prepared_dirs, voxels: float) -> dict:
    """{dataset: floor in mm} = ``voxels`` x in-plane spacing, and ``pooled``: the largest of them."""
    by_name = {Path(p).parent.name: p for p in prepared_dirs}
    floors = {}
    for name, t in tables.items():
        if name not in by_name:
            raise StudyTableError(f"no prepared cases given for data set {name!r} (need results/data/{name}/prepared)")
        floors[name] = float(voxels) * in_plane_spacing(by_name[name], t.test_cases)
    floors[POOLED] = max(floors.values())
    return floors


def write_claim_check(
    inputs: StudyInputs, prepared_dirs, summary_path, sanity_path, output, claim: dict
) -> pd.DataFrame:
    """The verdict from the study summary, the sanity checks and the per-case sums of every data set (the
    permutation tests relabel those)."""
    settings = claim_settings(claim)
    summary = pd.read_csv(summary_path, dtype={"dataset": str})
    sanity = pd.read_csv(sanity_path, dtype={"dataset": str})
    tables = load_tables(inputs)
    sums = {name: case_sums(t) for name, t in tables.items()}
    if POOLED in set(summary["dataset"]):
        sums[POOLED] = pool([sums[d] for d in sorted(sums)])
    floors = resolution_floors(tables, prepared_dirs, float(settings["resolution_floor_voxels"]))
    df = claim_check(summary, sanity, sums, settings, floors)
    # p_value (dice_tie) and lesions_needed (decided rows) are empty by design; nothing else may be.
    bad = df.drop(columns=list(CLAIM_OPTIONAL)).isna().any()
    if bad.any():
        raise StudyTableError(f"{output}: refusing to write NaN in columns {list(bad[bad].index)}")
    write_csv(df, output)
    for r in df.itertuples():
        log.info("%s %s: %s (p %s; %s)", r.dataset, r.finding, r.verdict, r.p_value, r.reason)
    return df
