"""Deterministic train/val/test split that never moves a case when other cases are added.

Each case's assignment depends only on its id: ``u(purpose, id)`` = first 60 bits of
sha256(f"{salt}/{purpose}/{case_id}") / 2**60, a uniform number in [0, 1).

- test: the official split when the source has one (``official_split == "test"``), else u(test) < test_fraction;
- val: among non-test cases, u(val) < val_fraction;
- train: the rest.
``max_cases`` per split keeps the cases with the smallest u(select): a stable, data-independent subset.

``all_test: true`` (evaluation-only data sets: reference masks and other tools' predictions, nothing trained)
makes every case a test case; train and val are then empty by design.
"""

from __future__ import annotations

import hashlib

import pandas as pd

SPLITS = ("train", "val", "test")


class SplitError(ValueError):
    pass


def unit_hash(salt: str, purpose: str, case_id: str) -> float:
    digest = hashlib.sha256(f"{salt}/{purpose}/{case_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 4) / float(1 << 60)


def assign_split(case_id: str, official: str, test_fraction: float, val_fraction: float, salt: str) -> str:
    if official not in ("", "train", "test"):
        raise SplitError(f"case {case_id!r}: official split must be train, test or empty, got {official!r}")
    if official == "test" or (official == "" and unit_hash(salt, "test", case_id) < test_fraction):
        return "test"
    return "val" if unit_hash(salt, "val", case_id) < val_fraction else "train"


def make_split(manifest: pd.DataFrame, split_cfg: dict, where: str = "manifest") -> pd.DataFrame:
    """Return ``case_id, split`` sorted by case id (only the ``max_cases`` selection)."""
    if manifest["case_id"].duplicated().any():
        dup = sorted(manifest.loc[manifest["case_id"].duplicated(), "case_id"])[:5]
        raise SplitError(f"{where}: duplicate case ids {dup}")
    if split_cfg.get("all_test"):
        table = pd.DataFrame({"case_id": sorted(manifest["case_id"].astype(str)), "split": "test"})
        limit = (split_cfg.get("max_cases") or {}).get("test")
        if limit is not None and len(table) > limit:
            salt = str(split_cfg.get("salt", "lesionbench"))
            keep = sorted(table["case_id"], key=lambda c: unit_hash(salt, "select", c))[:limit]
            table = table[table["case_id"].isin(keep)].reset_index(drop=True)
        if table.empty:
            raise SplitError(f"{where}: no cases to evaluate")
        return table
    salt = str(split_cfg.get("salt", "lesionbench"))
    test_fraction = float(split_cfg.get("test_fraction", 0.3))
    val_fraction = float(split_cfg.get("val_fraction", 0.15))
    official = manifest.get("official_split", pd.Series([""] * len(manifest))).fillna("").astype(str)
    table = pd.DataFrame({
        "case_id": manifest["case_id"].astype(str).to_numpy(),
        "split": [assign_split(c, o, test_fraction, val_fraction, salt)
                  for c, o in zip(manifest["case_id"].astype(str), official)],
    })
    limits = split_cfg.get("max_cases") or {}
    keep = []
    for name in SPLITS:
        part = table[table["split"] == name]
        limit = limits.get(name)
        if limit is not None and len(part) > limit:
            order = sorted(part["case_id"], key=lambda c: unit_hash(salt, "select", c))
            part = part[part["case_id"].isin(order[:limit])]
        keep.append(part)
    table = pd.concat(keep).sort_values("case_id", kind="stable").reset_index(drop=True)
    counts = table["split"].value_counts()
    empty = [s for s in SPLITS if counts.get(s, 0) == 0]
    if empty:
        raise SplitError(f"{where}: split {empty} would be empty for {len(manifest)} cases "
                         f"(test_fraction={test_fraction}, val_fraction={val_fraction}, salt={salt!r}); "
                         f"add cases or change the fractions or salt")
    return table
