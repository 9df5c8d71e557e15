"""Reading and checking the inputs of the statistics: per-case and per-lesion metric tables, the test split,
the reference lesion table and the quartile edges (docs/contracts.md).

Every check fails with StudyTableError naming the file and the problem, so no case or lesion is ever dropped
silently: each per-case table must list exactly the test cases of ``split.csv``, each per-lesion table
exactly the test-split reference lesions of ``lesions.csv`` (plus its false-positive lesions), and the
lesion counts of both tables must agree.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.lesions import EDGE_RULES, FIXED_RULE, LesionError, stratum_edges
from ..io import tables as io_tables

# Case-level metrics (also computed per lesion), then the two detection statistics.
CASE_METRICS = ("dice", "iou", "hd95", "asd", "contour_f1", "nsd")
DETECTION_METRICS = ("lesion_recall", "fp_per_case")
METRICS = CASE_METRICS + DETECTION_METRICS
BOUNDARY_METRICS = ("hd95", "asd", "contour_f1")
HIGHER_IS_BETTER = {
    "dice": True,
    "iou": True,
    "hd95": False,
    "asd": False,
    "contour_f1": True,
    "nsd": True,
    "lesion_recall": True,
    "fp_per_case": False,
}
QUARTILES = ("Q1", "Q2", "Q3", "Q4")
STRATA = ("overall",) + QUARTILES
POOLED = "pooled"
# Which reference lesions a lesion-level statistic runs over (defined in ``strata``), in table order.
LESION_SETS = ("all", "detected", "common")

PER_CASE_COLUMNS = (
    ("dataset", "model", "seed", "case_id", "ref_empty", "pred_empty", "ref_voxels", "pred_voxels")
    + CASE_METRICS
    + ("n_ref_lesions", "n_hit_lesions", "n_fp_lesions")
)
PER_LESION_COLUMNS = (
    "dataset",
    "model",
    "seed",
    "case_id",
    "kind",
    "lesion_id",
    "merged_lesion_id",
    "voxels",
    "size_fraction",
    "detected",
) + CASE_METRICS
LESION_COLUMNS = ("dataset", "case_id", "split", "lesion_id", "size_fraction")
QUARTILE_COLUMNS = ("dataset", "edge_rule", "edge_lesions", "n_lesions", "min", "q25", "q50", "q75", "max")
SPLIT_COLUMNS = ("case_id", "split")
KINDS = ("reference", "false_positive")
STRING_COLUMNS = {"dataset": str, "model": str, "case_id": str, "kind": str, "split": str}

log = logging.getLogger("lesionbench")


class StudyTableError(ValueError):
    """An input table of the statistics is missing, malformed or inconsistent; the message names it."""


@dataclass
class DatasetTables:
    """Everything the statistics read for one data set, checked for consistency."""

    dataset: str
    per_case: pd.DataFrame  # all models and seeds, PER_CASE_COLUMNS
    per_lesion: pd.DataFrame  # all models and seeds, PER_LESION_COLUMNS
    test_cases: tuple[str, ...]  # sorted
    reference: pd.DataFrame  # test-split reference lesions: case_id, lesion_id, size_fraction
    edges: dict  # min, q25, q50, q75, max, n_lesions of the test-split lesion sizes
    models: tuple[str, ...]
    seeds: tuple[int, ...]


def read_table(path: str | os.PathLike, columns: tuple[str, ...]) -> pd.DataFrame:
    """A study input (lesionbench.io.tables.read_table: identifiers as strings, empty cells as NaN), reduced
    to ``columns``, none of which may hold a missing value."""
    path = Path(path)
    df = io_tables.read_table(path, columns, StudyTableError, strings=STRING_COLUMNS, empty_as_nan=True)
    df = df[list(columns)].copy()
    for col in columns:
        if col in STRING_COLUMNS:
            df[col] = df[col].astype(object)
        if df[col].isna().any():
            first = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise StudyTableError(f"{path}: column {col!r} is empty or NaN in row {first + 2}")
    return df


def _as_bool(series: pd.Series, path: Path, column: str) -> pd.Series:
    if series.dtype == bool:
        return series
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    text = series.astype(str).str.strip().str.lower()
    bad = ~text.isin(list(mapping))
    if bad.any():
        raise StudyTableError(f"{path}: column {column!r} holds non-boolean values {sorted(set(text[bad]))[:5]}")
    return text.map(mapping).astype(bool)


def _numeric(df: pd.DataFrame, columns, path: Path) -> None:
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            raise StudyTableError(
                f"{path}: column {col!r} holds non-numeric values "
                f"{sorted(set(df.loc[values.isna(), col].astype(str)))[:5]}"
            )
        if not np.isfinite(values.to_numpy(float)).all():
            raise StudyTableError(f"{path}: column {col!r} holds infinite values")
        df[col] = values.astype(float)


def read_metric_table(path: str | os.PathLike, kind: str) -> pd.DataFrame:
    """Read one per_case.csv (``kind='case'``) or per_lesion.csv (``kind='lesion'``) and check its types."""
    path = Path(path)
    columns = PER_CASE_COLUMNS if kind == "case" else PER_LESION_COLUMNS
    df = read_table(path, columns)
    if df.empty and kind == "case":
        raise StudyTableError(f"{path}: no rows")
    _numeric(df, CASE_METRICS, path)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce")
    if df["seed"].isna().any():
        raise StudyTableError(f"{path}: column 'seed' is not an integer")
    df["seed"] = df["seed"].astype(int)
    ids = df[["dataset", "model", "seed"]].drop_duplicates()
    if len(ids) > 1:
        raise StudyTableError(
            f"{path}: one table must hold one data set x model x seed, found {ids.to_dict('records')[:3]}"
        )
    if kind == "case":
        for col in ("ref_empty", "pred_empty"):
            df[col] = _as_bool(df[col], path, col)
        _numeric(df, ("ref_voxels", "pred_voxels", "n_ref_lesions", "n_hit_lesions", "n_fp_lesions"), path)
        if df["case_id"].duplicated().any():
            raise StudyTableError(f"{path}: duplicate case_id {sorted(df.loc[df.case_id.duplicated(), 'case_id'])[:5]}")
    else:
        df["detected"] = _as_bool(df["detected"], path, "detected")
        _numeric(df, ("voxels", "size_fraction"), path)
        df["lesion_id"] = df["lesion_id"].astype(int)
        bad = ~df["kind"].isin(KINDS)
        if bad.any():
            raise StudyTableError(f"{path}: column 'kind' must be one of {KINDS}, found {sorted(set(df.kind[bad]))}")
        _numeric(df, ("merged_lesion_id",), path)
        df["merged_lesion_id"] = df["merged_lesion_id"].astype(int)
        is_ref = (df["kind"] == "reference").to_numpy()
        if (df.loc[is_ref, "merged_lesion_id"] < 1).any() or (df.loc[~is_ref, "merged_lesion_id"] != 0).any():
            raise StudyTableError(
                f"{path}: merged_lesion_id must be >= 1 on reference rows and 0 on false-positive rows"
            )
        if df.duplicated(["case_id", "kind", "lesion_id"]).any():
            raise StudyTableError(f"{path}: duplicate (case_id, kind, lesion_id) rows")
    df["source_file"] = str(path)
    return df


def read_quartiles(path: str | os.PathLike, dataset: str) -> dict:
    path = Path(path)
    df = read_table(path, QUARTILE_COLUMNS)
    rows = df[df["dataset"] == dataset]
    if len(rows) != 1:
        raise StudyTableError(f"{path}: expected one row for data set {dataset!r}, found {len(rows)}")
    _numeric(rows := rows.copy(), QUARTILE_COLUMNS[2:], path)
    edges: dict = {k: float(rows[k].iloc[0]) for k in QUARTILE_COLUMNS[4:]}
    edges["n_lesions"] = int(rows["n_lesions"].iloc[0])
    edges["edge_lesions"] = int(rows["edge_lesions"].iloc[0])
    edges["edge_rule"] = str(rows["edge_rule"].iloc[0])
    if edges["edge_rule"] not in EDGE_RULES + (FIXED_RULE,):
        raise StudyTableError(
            f"{path}: unknown edge_rule {edges['edge_rule']!r} (expected one of {EDGE_RULES + (FIXED_RULE,)})"
        )
    if not (edges["q25"] <= edges["q50"] <= edges["q75"] and edges["min"] <= edges["max"]):
        raise StudyTableError(f"{path}: quartile edges are not increasing: {edges}")
    if edges["edge_rule"] == "test_quartiles" and not edges["min"] <= edges["q25"] <= edges["q75"] <= edges["max"]:
        raise StudyTableError(f"{path}: test quartiles outside the test lesion size range: {edges}")
    return edges


def read_split(path: str | os.PathLike) -> tuple[str, ...]:
    """Sorted test case ids of a split.csv."""
    path = Path(path)
    df = read_table(path, SPLIT_COLUMNS)
    test = sorted(df.loc[df["split"] == "test", "case_id"])
    if not test:
        raise StudyTableError(f"{path}: no test cases")
    return tuple(test)


def read_reference_lesions(path: str | os.PathLike, dataset: str) -> pd.DataFrame:
    """Test-split reference lesions of lesions.csv: case_id, lesion_id, size_fraction."""
    path = Path(path)
    df = read_table(path, LESION_COLUMNS)
    other = sorted(set(df["dataset"]) - {dataset})
    if other:
        raise StudyTableError(f"{path}: rows of other data sets {other} (expected only {dataset!r})")
    df = df[df["split"] == "test"].copy()
    _numeric(df, ("size_fraction",), path)
    df["lesion_id"] = df["lesion_id"].astype(int)
    return df[["case_id", "lesion_id", "size_fraction"]].sort_values(["case_id", "lesion_id"]).reset_index(drop=True)


def expected_edges(lesions_path: str | os.PathLike, edges: dict, lesions: pd.DataFrame | None = None) -> dict:
    """The quartiles.csv row that lesions.csv gives by the rule ``edges`` states (``data.lesions.stratum_edges``;
    fixed edges are taken as written, only the test lesion range and count are recomputed). ``lesions``: the
    table already in memory (all splits); None reads ``lesions_path``."""
    path = Path(lesions_path)
    if lesions is None:
        lesions = read_table(path, LESION_COLUMNS)
        _numeric(lesions, ("size_fraction",), path)
    df = lesions
    rule = edges["edge_rule"]
    if rule == FIXED_RULE:
        rule = [edges["q25"], edges["q50"], edges["q75"]]
    try:
        return stratum_edges(df, rule, str(edges.get("dataset", "")))
    except LesionError as exc:
        raise StudyTableError(f"{path}: {exc}") from None


def _pairs(df: pd.DataFrame) -> set:
    return set(zip(df["case_id"], df["lesion_id"]))


def check_dataset(
    tables: DatasetTables, split_path, lesions_path, quartiles_path, lesions: pd.DataFrame | None = None
) -> DatasetTables:
    """Cross-file consistency of one data set; raises StudyTableError naming the offending file.

    The evaluation leaves out a reference lesion lying entirely under the ignore mask (no row in any
    per-lesion table); such lesions must be absent for every model and seed alike. They are logged and left
    out of the lesion statistics, so every model is scored on the same lesions. Returns the tables with
    ``reference`` restricted to the evaluated lesions. The quartile edges must follow from lesions.csv by the
    rule quartiles.csv states (``lesions``: that table in memory, all splits; None reads ``lesions_path``).
    """
    test = set(tables.test_cases)
    all_pairs = _pairs(tables.reference)
    ref_cases = set(tables.reference["case_id"])
    if not ref_cases <= test:
        raise StudyTableError(
            f"{lesions_path}: test lesions in cases not in the test split of {split_path}: "
            f"{sorted(ref_cases - test)[:5]}"
        )
    sizes = tables.reference["size_fraction"].to_numpy(float)
    if len(sizes):
        expect = expected_edges(lesions_path, tables.edges, lesions)
        keys = ("q25", "q50", "q75", "min", "max")
        got = np.array([tables.edges[k] for k in keys])
        want = np.array([expect[k] for k in keys])
        if not np.allclose(want, got, rtol=1e-9, atol=0) or tables.edges["n_lesions"] != len(sizes):
            raise StudyTableError(
                f"{quartiles_path}: edges {got.tolist()} / n_lesions {tables.edges['n_lesions']} "
                f"do not follow by rule {tables.edges['edge_rule']!r} from the lesions of "
                f"{lesions_path} ({len(sizes)} test lesions, expected {want.tolist()}); "
                f"is one of them stale?"
            )
    ref_size = dict(zip(zip(tables.reference.case_id, tables.reference.lesion_id), sizes))
    evaluated, first_src = None, None
    for (model, seed), pc in tables.per_case.groupby(["model", "seed"], sort=True):
        src = pc["source_file"].iloc[0]
        cases = set(pc["case_id"])
        if cases != test:
            raise StudyTableError(
                f"{src}: case list differs from the test split of {split_path}: missing "
                f"{sorted(test - cases)[:5]}, unexpected {sorted(cases - test)[:5]}"
            )
        pl = tables.per_lesion[(tables.per_lesion.model == model) & (tables.per_lesion.seed == seed)]
        lsrc = (
            pl["source_file"].iloc[0]
            if len(pl)
            else (f"per_lesion.csv of data set {tables.dataset!r}, model {model!r}, seed {seed}")
        )
        unknown = sorted(set(pl["case_id"]) - test)
        if unknown:
            raise StudyTableError(f"{lsrc}: lesions in cases outside the test split: {unknown[:5]}")
        ref = pl[pl["kind"] == "reference"]
        pairs = _pairs(ref)
        if not pairs <= all_pairs:
            raise StudyTableError(
                f"{lsrc}: reference lesions that are not test lesions of {lesions_path}: "
                f"{sorted(pairs - all_pairs)[:5]}"
            )
        if evaluated is None:
            evaluated, first_src = pairs, lsrc
        elif pairs != evaluated:
            raise StudyTableError(
                f"{lsrc}: reference lesions differ from those of {first_src}: missing "
                f"{sorted(evaluated - pairs)[:5]}, extra {sorted(pairs - evaluated)[:5]}"
            )
        their = ref["size_fraction"].to_numpy(float)
        ours = np.array([ref_size[p] for p in zip(ref.case_id, ref.lesion_id)], float)
        if not np.allclose(their, ours, rtol=1e-6, atol=1e-12):
            i = int(np.argmax(np.abs(their - ours)))
            raise StudyTableError(
                f"{lsrc}: size_fraction of reference lesion {ref.case_id.iloc[i]}/"
                f"{ref.lesion_id.iloc[i]} is {their[i]}, {lesions_path} says {ours[i]}"
            )
        counts = (
            pd.DataFrame(
                {
                    "n_ref_lesions": ref.groupby("case_id").size(),
                    "n_hit_lesions": ref.groupby("case_id")["detected"].sum(),
                    "n_fp_lesions": pl[pl["kind"] == "false_positive"].groupby("case_id").size(),
                }
            )
            .reindex(sorted(test))
            .fillna(0)
            .astype(int)
        )
        stated = pc.set_index("case_id")[list(counts.columns)].reindex(counts.index).astype(int)
        diff = (stated != counts).any(axis=1)
        if diff.any():
            case = diff.index[diff][0]
            raise StudyTableError(
                f"{src}: lesion counts of case {case!r} {stated.loc[case].to_dict()} disagree "
                f"with {lsrc} {counts.loc[case].to_dict()}"
            )
    evaluated = evaluated or set()  # no per-lesion table: no lesion evaluated
    left_out = sorted(all_pairs - evaluated)
    if left_out:
        log.warning(
            "%s: %d of %d test lesions of %s have no row in any per-lesion table (entirely under the "
            "ignore mask) and are left out of the lesion statistics, e.g. %s",
            tables.dataset,
            len(left_out),
            len(all_pairs),
            lesions_path,
            left_out[:3],
        )
        keep = [p in evaluated for p in zip(tables.reference.case_id, tables.reference.lesion_id)]
        tables.reference = tables.reference[keep].reset_index(drop=True)
    return tables


def _dataset_from_frames(dataset, pcs, pls, split_path, lesions_path, quartiles_path) -> DatasetTables:
    pls = [df for df in pls if len(df)]  # a per-lesion table with no lesion at all adds nothing
    for df in pcs + pls:
        if df["dataset"].iloc[0] != dataset:
            raise StudyTableError(
                f"{df['source_file'].iloc[0]}: data set {df['dataset'].iloc[0]!r}, expected {dataset!r}"
            )
    if not pcs:
        raise StudyTableError(f"data set {dataset!r}: no per_case.csv given")
    per_case = pd.concat(pcs, ignore_index=True)
    per_lesion = (
        pd.concat(pls, ignore_index=True)
        if pls
        else pd.DataFrame({c: [] for c in PER_LESION_COLUMNS + ("source_file",)})
    )
    dup = per_case.groupby(["model", "seed"])["source_file"].nunique()
    if (dup > 1).any():
        m, s = dup.index[dup > 1][0]
        raise StudyTableError(f"data set {dataset!r}: model {m!r} seed {s} has more than one per_case.csv")
    dup = per_lesion.groupby(["model", "seed"])["source_file"].nunique()
    if (dup > 1).any():
        m, s = dup.index[dup > 1][0]
        raise StudyTableError(f"data set {dataset!r}: model {m!r} seed {s} has more than one per_lesion.csv")
    models = tuple(sorted(per_case["model"].unique()))
    seeds = tuple(sorted(int(s) for s in per_case["seed"].unique()))
    have = set(zip(per_case["model"], per_case["seed"]))
    grid = {(m, s) for m in models for s in seeds}
    if have != grid:
        raise StudyTableError(
            f"data set {dataset!r}: every model needs every seed; missing per_case.csv for "
            f"(model, seed) {sorted(grid - have)}"
        )
    tables = DatasetTables(
        dataset=dataset,
        per_case=per_case,
        per_lesion=per_lesion,
        test_cases=read_split(split_path),
        reference=read_reference_lesions(lesions_path, dataset),
        edges=read_quartiles(quartiles_path, dataset),
        models=models,
        seeds=seeds,
    )
    return check_dataset(tables, split_path, lesions_path, quartiles_path)


def dataset_of(path: str | os.PathLike) -> str:
    """The data set a per-data-set file belongs to: its folder name (results/data/{dataset}/file.csv)."""
    return Path(path).parent.name


def load_study(per_case_paths, per_lesion_paths, split_paths, lesions_paths, quartiles_paths) -> dict:
    """Read every data set: per-data-set files are matched by their folder name, metric tables by their
    ``dataset`` column. Returns {dataset: DatasetTables} in sorted order."""
    per_ds: dict[str, dict[str, str | os.PathLike]] = {}
    for kind, paths in (("split", split_paths), ("lesions", lesions_paths), ("quartiles", quartiles_paths)):
        for p in paths:
            per_ds.setdefault(dataset_of(p), {})[kind] = p
    by_ds: dict = {}
    for kind, paths in (("case", per_case_paths), ("lesion", per_lesion_paths)):
        for p in paths:
            df = read_metric_table(p, kind)
            if df.empty:
                continue  # an empty per-lesion table (no lesion, no false positive) adds nothing
            by_ds.setdefault(df["dataset"].iloc[0], {"case": [], "lesion": []})[kind].append(df)
    unknown = sorted(set(by_ds) - set(per_ds))
    if unknown:
        raise StudyTableError(f"metric tables for data sets {unknown} have no split.csv/lesions.csv/quartiles.csv")
    out = {}
    for ds in sorted(per_ds):
        files = per_ds[ds]
        missing = [k for k in ("split", "lesions", "quartiles") if k not in files]
        if missing:
            raise StudyTableError(f"data set {ds!r}: no {missing} file given")
        if ds not in by_ds:
            raise StudyTableError(f"data set {ds!r}: no per_case.csv given")
        out[ds] = _dataset_from_frames(
            ds, by_ds[ds]["case"], by_ds[ds]["lesion"], files["split"], files["lesions"], files["quartiles"]
        )
    return out


METRIC_ORDER = (
    "dice",
    "iou",
    "hd95",
    "asd",
    "contour_f1",
    "nsd",
    "lesion_recall",
    "lesion_recall_merged",
    "fp_per_case",
    "any",
)


def sort_rows(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Stable sort: data sets alphabetically with ``pooled`` last, lesion sets all, detected, common, strata
    overall, Q1..Q4, metrics in the order of the metric list, every other key alphabetically."""
    if df.empty:
        return df.reset_index(drop=True)
    sort_keys = {}
    for key in keys:
        col = df[key]
        if key == "dataset":
            sort_keys[key] = col.map(lambda d: (d == POOLED, d))
        elif key in ("stratum", "quartile"):
            sort_keys[key] = col.map(lambda s: STRATA.index(s) if s in STRATA else len(STRATA))
        elif key == "lesion_set":
            sort_keys[key] = col.map(lambda s: LESION_SETS.index(s) if s in LESION_SETS else len(LESION_SETS))
        elif key == "metric":
            sort_keys[key] = col.map(lambda m: METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER))
        else:
            sort_keys[key] = col
    columns = [sort_keys[k].tolist() for k in keys]
    order = sorted(range(len(df)), key=lambda i: tuple(c[i] for c in columns))
    return df.iloc[order].reset_index(drop=True)
