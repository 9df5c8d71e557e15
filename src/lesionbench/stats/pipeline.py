"""Entry points of the analysis rules: read the inputs, build one study table, write it atomically.

Each function takes the rule's input file lists (per-case and per-lesion tables of every data set x model x
seed; split.csv, lesions.csv and quartiles.csv of every data set) and writes its outputs; the rule scripts
only pass ``snakemake`` fields through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from ..io.atomic import write_csv
from .aggregate import OPTIONAL_COLUMNS, all_estimates, ranking_estimates, size_stratified_metrics, small_lesion_metrics
from .bootstrap import directional_robustness
from .claim import claim_check
from .merged import merged_recall_sums
from .overall import overall_metrics
from .ranking import ranking_reversals, reversal_summary
from .sanity import read_small_lesion_table, sanity_checks
from .strata import case_sums
from .summary import SUMMARY_OPTIONAL, dataset_table, study_summary
from .tables import StudyTableError, load_study

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


def claim_settings(claim: dict) -> dict:
    keys = (
        "min_lesions",
        "dice_tie",
        "seed_sd_factor",
        "min_boundary_spread_pct",
        "separation_ratio",
        "min_sign_share",
    )
    missing = [k for k in keys if k not in claim]
    if missing:
        raise StudyTableError(f"config claim block lacks {missing}")
    return {k: claim[k] for k in keys}


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


def write_claim_check(summary_path, stratified_path, robustness_path, sanity_path, output, claim: dict) -> pd.DataFrame:
    summary = pd.read_csv(summary_path, dtype={"dataset": str})
    stratified = pd.read_csv(stratified_path, dtype={"dataset": str, "model": str})
    robustness = pd.read_csv(robustness_path, dtype={"dataset": str, "pair_first": str, "pair_second": str})
    sanity = pd.read_csv(sanity_path, dtype={"dataset": str})
    df = claim_check(summary, stratified, robustness, sanity, claim_settings(claim))
    write_table(df, output)
    for r in df.itertuples():
        log.info("%s %s: %s (%s)", r.dataset, r.finding, r.verdict, r.reason)
    return df
