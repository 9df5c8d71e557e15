"""Checkpoint validations of the data stage: fail loudly, naming the case and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io.cases import CaseError, load_case
from .lesions import enumerate_lesions
from .split import SPLITS


class ValidationError(ValueError):
    pass


def validate_dataset(name: str, prepared: Path, split: pd.DataFrame, cases: pd.DataFrame,
                     lesions: pd.DataFrame, quartiles: pd.DataFrame, all_test: bool = False) -> dict:
    """Check the prepared data set against its tables; return the counts that were verified.

    - every split case is prepared, loads, and has a binary mask of the image's shape (Case.check);
    - cases.csv lists exactly the split's cases with the same split names;
    - lesion counts recomputed from the saved masks equal lesions.csv, per case;
    - every split is non-empty (only test for an evaluation-only data set, ``all_test``), the test split has
      lesions, and quartile edges are finite and ordered.
    """
    problems: list[str] = []
    if sorted(split["case_id"]) != sorted(cases["case_id"]) or \
            dict(zip(split["case_id"], split["split"])) != dict(zip(cases["case_id"], cases["split"])):
        problems.append("cases.csv does not list the same cases and splits as split.csv")
    for s in ("test",) if all_test else SPLITS:
        if not (split["split"] == s).any():
            problems.append(f"split {s!r} is empty")
    table_counts = lesions.groupby("case_id").size()
    for case_id in split["case_id"]:
        try:
            case = load_case(prepared, case_id, mmap=True)
            case.check()
        except CaseError as exc:
            problems.append(f"case {case_id!r}: {exc}")
            continue
        recomputed = len(enumerate_lesions(np.asarray(case.mask)))
        listed = int(table_counts.get(case_id, 0))
        if recomputed != listed:
            problems.append(f"case {case_id!r}: mask has {recomputed} lesions but lesions.csv lists {listed}")
    test_lesions = int((lesions["split"] == "test").sum())
    if test_lesions == 0:
        problems.append("the test split has no reference lesions" if not all_test else
                        "the reference masks hold no lesion at all (every voxel is background or ignored)")
    if len(quartiles) != 1:
        problems.append(f"quartiles.csv must have one row, has {len(quartiles)}")
    else:
        q = quartiles.iloc[0]
        edges = pd.to_numeric(pd.Series([q["min"], q["q25"], q["q50"], q["q75"], q["max"]]),
                              errors="coerce").to_numpy(float)
        if not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) >= 0):
            problems.append(f"quartile edges are not finite and ordered: {edges.tolist()}")
        if int(q["n_lesions"]) != test_lesions:
            problems.append(f"quartiles.csv counts {q['n_lesions']} test lesions, lesions.csv {test_lesions}")
    if problems:
        raise ValidationError(f"data set {name!r} failed validation ({prepared}):\n  - " + "\n  - ".join(problems))
    return {
        "dataset": name,
        "cases": {s: int((split["split"] == s).sum()) for s in SPLITS},
        "lesions": {s: int((lesions["split"] == s).sum()) for s in SPLITS},
        "checks": ["cases prepared with valid masks", "cases.csv matches split.csv",
                   "lesion counts match the saved masks", "non-empty splits", "test lesions present",
                   "quartile edges finite and ordered"],
    }


def dataset_summary(names: list[str], datasets: dict, splits: dict, lesions: dict, quartiles: dict) -> pd.DataFrame:
    """One row per data set: modality, cases and lesions per split, the Q1 upper bound and other edges."""
    rows = []
    for name in names:
        split, les, q = splits[name], lesions[name], quartiles[name].iloc[0]
        row = {"dataset": name, "modality": datasets[name].get("modality", "")}
        for s in SPLITS:
            row[f"cases_{s}"] = int((split["split"] == s).sum())
        for s in SPLITS:
            row[f"lesions_{s}"] = int((les["split"] == s).sum())
        row.update({"q1_upper": float(q["q25"]), "q2_upper": float(q["q50"]), "q3_upper": float(q["q75"]),
                    "size_min": float(q["min"]), "size_max": float(q["max"])})
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("dataset").reset_index(drop=True)
    counts = table[[c for c in table.columns if c.startswith(("cases_", "lesions_"))]]
    empty = any(row[f"cases_{s}"] <= 0 for _, row in table.iterrows()
                for s in (("test",) if datasets[row["dataset"]].get("all_test") else SPLITS))
    if counts.isna().any().any() or empty:
        raise ValidationError("dataset summary is missing case counts for some split")
    return table
