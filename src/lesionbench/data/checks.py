"""Checkpoint validations of the data stage: fail loudly, naming the case and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..components import label_components
from ..io.cases import CaseError, load_case
from ..parallel import map_cases
from .lesions import FIXED_RULE, LesionError, stratum_edges
from .split import SPLITS


class ValidationError(ValueError):
    pass


def validate_dataset(
    name: str,
    prepared: Path,
    split: pd.DataFrame,
    cases: pd.DataFrame,
    lesions: pd.DataFrame,
    quartiles: pd.DataFrame,
    all_test: bool = False,
    threads: int = 1,
) -> dict:
    """Check the prepared data set against its tables; return the counts that were verified.

    - every split case is prepared, loads, and has a binary mask of the image's shape (Case.check);
    - cases.csv lists exactly the split's cases with the same split names;
    - lesion counts recomputed from the saved masks equal lesions.csv, per case;
    - every split is non-empty (only test for an evaluation-only data set, ``all_test``), the test split has
      lesions, and quartile edges are finite and ordered.
    Cases are loaded and labelled on up to ``threads`` threads.
    """
    problems: list[str] = []
    if sorted(split["case_id"]) != sorted(cases["case_id"]) or dict(zip(split["case_id"], split["split"])) != dict(
        zip(cases["case_id"], cases["split"])
    ):
        problems.append("cases.csv does not list the same cases and splits as split.csv")
    for s in ("test",) if all_test else SPLITS:
        if not (split["split"] == s).any():
            problems.append(f"split {s!r} is empty")
    table_counts = lesions.groupby("case_id").size()

    def case_problem(case_id: str) -> str | None:
        try:
            case = load_case(prepared, case_id, mmap=True)
            case.check()
        except CaseError as exc:
            return f"case {case_id!r}: {exc}"
        recomputed = label_components(np.asarray(case.mask))[1]
        listed = int(table_counts.get(case_id, 0))
        if recomputed != listed:
            return f"case {case_id!r}: mask has {recomputed} lesions but lesions.csv lists {listed}"
        return None

    problems += [p for p in map_cases(case_problem, split["case_id"], threads) if p]
    test_lesions = int((lesions["split"] == "test").sum())
    if test_lesions == 0:
        problems.append(
            "the test split has no reference lesions"
            if not all_test
            else "the reference masks hold no lesion at all (every voxel is background or ignored)"
        )
    if len(quartiles) != 1:
        problems.append(f"quartiles.csv must have one row, has {len(quartiles)}")
    else:
        q = quartiles.iloc[0]
        edges = pd.to_numeric(pd.Series([q["q25"], q["q50"], q["q75"]]), errors="coerce").to_numpy(float)
        span = pd.to_numeric(pd.Series([q["min"], q["max"]]), errors="coerce").to_numpy(float)
        if not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) >= 0):
            problems.append(f"quartile edges are not finite and ordered: {edges.tolist()}")
        if not np.all(np.isfinite(span)) or span[0] > span[1]:
            problems.append(f"test lesion size range is not finite and ordered: {span.tolist()}")
        if int(q["n_lesions"]) != test_lesions:
            problems.append(f"quartiles.csv counts {q['n_lesions']} test lesions, lesions.csv {test_lesions}")
        elif test_lesions and np.all(np.isfinite(edges)):
            # the edges must follow from lesions.csv by the rule they state (fixed edges: as written)
            rule = q["edge_rule"] if q["edge_rule"] != FIXED_RULE else edges.tolist()
            try:
                expect = stratum_edges(lesions, rule, name)
            except LesionError as exc:
                problems.append(f"quartiles.csv: {exc}")
            else:
                got = {k: float(q[k]) for k in ("q25", "q50", "q75", "min", "max")}
                if any(not np.isclose(got[k], expect[k], rtol=1e-9, atol=0) for k in got):
                    problems.append(
                        f"quartiles.csv edges {got} do not follow from lesions.csv by rule "
                        f"{q['edge_rule']!r} (expected {expect}); is one of them stale?"
                    )
    if problems:
        raise ValidationError(f"data set {name!r} failed validation ({prepared}):\n  - " + "\n  - ".join(problems))
    return {
        "dataset": name,
        "cases": {s: int((split["split"] == s).sum()) for s in SPLITS},
        "lesions": {s: int((lesions["split"] == s).sum()) for s in SPLITS},
        "checks": [
            "cases prepared with valid masks",
            "cases.csv matches split.csv",
            "lesion counts match the saved masks",
            "non-empty splits",
            "test lesions present",
            "quartile edges finite, ordered and following from lesions.csv by their rule",
        ],
    }


def dataset_summary(
    names: list[str], datasets: dict, splits: dict, lesions: dict, quartiles: dict, cases: dict | None = None
) -> pd.DataFrame:
    """One row per data set: modality, cases and lesions per split, the Q1 upper bound and other edges.

    With ``cases`` (each data set's cases.csv), also per split what the prepare stage's resize did to the
    reference lesions (:func:`lesionbench.data.prepare.resize_lesion_counts`, summed over cases):
    ``lesions_source_<split>``, ``lesions_prepared_<split>``, ``lesions_lost_<split>``,
    ``lesions_merged_<split>``. The prepared count must equal the lesion table's (same components)."""
    rows = []
    for name in names:
        split, les, q = splits[name], lesions[name], quartiles[name].iloc[0]
        row = {"dataset": name, "modality": datasets[name].get("modality", "")}
        for s in SPLITS:
            row[f"cases_{s}"] = int((split["split"] == s).sum())
        for s in SPLITS:
            row[f"lesions_{s}"] = int((les["split"] == s).sum())
        if cases is not None:
            row.update(_resize_counts(name, cases[name], row))
        row.update(
            {
                "size_bins": str(q["edge_rule"]),
                "q1_upper": float(q["q25"]),
                "q2_upper": float(q["q50"]),
                "q3_upper": float(q["q75"]),
                "size_min": float(q["min"]),
                "size_max": float(q["max"]),
            }
        )
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("dataset").reset_index(drop=True)
    counts = table[[c for c in table.columns if c.startswith(("cases_", "lesions_"))]]
    empty = any(
        row[f"cases_{s}"] <= 0
        for _, row in table.iterrows()
        for s in (("test",) if datasets[row["dataset"]].get("all_test") else SPLITS)
    )
    if counts.isna().any().any() or empty:
        raise ValidationError("dataset summary is missing case counts for some split")
    return table


RESIZE_COUNT_KINDS = ("source", "prepared", "lost", "merged")


def _resize_counts(name: str, cases: pd.DataFrame, row: dict) -> dict:
    """Per split sums of the cases.csv lesion counts, checked against the lesion table's counts."""
    columns = [f"lesions_{kind}" for kind in RESIZE_COUNT_KINDS]
    missing = [c for c in columns if c not in cases.columns]
    if missing:
        raise ValidationError(f"{name}: cases.csv lacks {missing} (prepared by an older version: re-run prepare)")
    out = {}
    for kind in RESIZE_COUNT_KINDS:
        for s in SPLITS:
            out[f"lesions_{kind}_{s}"] = int(cases.loc[cases["split"] == s, f"lesions_{kind}"].sum())
    for s in SPLITS:
        if out[f"lesions_prepared_{s}"] != row[f"lesions_{s}"]:
            raise ValidationError(
                f"{name}: cases.csv counts {out[f'lesions_prepared_{s}']} prepared {s} lesions, "
                f"the lesion table {row[f'lesions_{s}']}"
            )
    return out
