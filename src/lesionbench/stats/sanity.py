"""The study protocol's seven failure modes as automatic checks (``results/sanity_checks.csv``).

One row per data set x check, status ``pass`` / ``fail`` / ``warn``, with the figures behind it. The checks
read the raw inputs of the statistics file by file (never through the consistency checks of ``tables``,
which stop at the first problem), so every defect is reported as a row:

1. ``quartiles``: edges recomputed from the test lesions of ``lesions.csv`` (numpy linear percentiles) equal
   those of ``quartiles.csv`` and the Q1 upper bound of the small-lesion table (relative tolerance 1e-9).
2. ``metric_code``: every model and seed of the data set was evaluated by the same metric code and the same
   evaluation settings (equal ``metric_code_sha256`` and ``settings_sha256`` in the provenance sidecars).
3. ``small_lesions``: enough genuinely small lesions: Q1 lesions and ``common`` Q1 lesions (detected by every
   model and seed) against ``claim.min_lesions``: pass if both reach it, warn if only the Q1 count does,
   fail if the Q1 count does not.
4. ``postprocessing``: one threshold and one smallest-component setting for every model of every data set.
5. ``connectivity``: every table evaluated with the connectivity of ``components.FULL_CONNECTIVITY``, the one
   the lesion table and the metrics use.
6. ``completeness``: every test case in every per-case table and every evaluated test lesion in every
   per-lesion table (empty reference / prediction cases counted, never dropped); lesions absent from every
   table alike (under the ignore mask) are counted too.
7. ``borders``: one border function named in every sidecar, and that function matches the definition
   (mask XOR face-connected erosion, ``scipy.ndimage.binary_erosion``) on a 2D and a 3D test mask.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from ..components import FULL_CONNECTIVITY
from ..metrics import surface
from .tables import (
    StudyTableError,
    dataset_of,
    read_metric_table,
    read_quartiles,
    read_reference_lesions,
    read_split,
    read_table,
)

CHECKS = ("quartiles", "metric_code", "small_lesions", "postprocessing", "connectivity", "completeness", "borders")
STATUSES = ("pass", "warn", "fail")
SANITY_COLUMNS = ["dataset", "check", "status", "figures"]
RTOL = 1e-9


def read_provenance(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyTableError(f"{path}: missing") from None
    except json.JSONDecodeError as exc:
        raise StudyTableError(f"{path}: not JSON ({exc})") from exc
    for key in ("dataset", "model", "seed", "metric_code_sha256", "settings", "settings_sha256"):
        if key not in record:
            raise StudyTableError(f"{path}: lacks {key!r}")
    record["source_file"] = str(path)
    return record


def _run(r) -> str:
    return f"{r['model']}/seed{r['seed']}"


def check_quartiles(sizes: np.ndarray, edges: dict, q1_upper_used) -> tuple[str, str]:
    """``q1_upper_used``: the Q1 upper bounds a study table reports for the data set (may be empty)."""
    expect = np.percentile(sizes, [25, 50, 75]) if len(sizes) else np.full(3, np.nan)
    got = np.array([edges["q25"], edges["q50"], edges["q75"]])
    used = sorted(set(float(v) for v in q1_upper_used))
    ok = len(sizes) > 0 and np.allclose(expect, got, rtol=RTOL, atol=0) and edges["n_lesions"] == len(sizes)
    ok = ok and all(np.isclose(v, expect[0], rtol=RTOL, atol=0) for v in used)
    figures = (f"recomputed from {len(sizes)} test lesions: q25 {expect[0]:.6g}, q50 {expect[1]:.6g}, "
               f"q75 {expect[2]:.6g}; quartiles.csv ({edges['n_lesions']} lesions): q25 {got[0]:.6g}, "
               f"q50 {got[1]:.6g}, q75 {got[2]:.6g}; small-lesion table Q1 upper bound "
               + (", ".join(f"{v:.6g}" for v in used) if used else "not given"))
    return ("pass" if ok else "fail"), figures


def _majority_split(records: list[dict], key) -> tuple[Any, list[dict]]:
    counts = Counter(key(r) for r in records)
    common, _ = counts.most_common(1)[0]
    return common, [r for r in records if key(r) != common]


def check_metric_code(records: list[dict], expected_runs: list[str]) -> tuple[str, str]:
    missing = sorted(set(expected_runs) - {_run(r) for r in records})
    if not records:
        return "fail", "no provenance sidecar for any model"
    code, odd_code = _majority_split(records, lambda r: r["metric_code_sha256"])
    settings, odd_settings = _majority_split(records, lambda r: r["settings_sha256"])
    figures = (f"{len(records)} tables; metric code {code[:12]} in {len(records) - len(odd_code)}, "
               f"settings {settings[:12]} in {len(records) - len(odd_settings)}")
    if odd_code:
        figures += "; other metric code: " + ", ".join(f"{_run(r)} ({r['metric_code_sha256'][:12]})" for r in odd_code)
    if odd_settings:
        ref = next(r for r in records if r["settings_sha256"] == settings)["settings"]
        diffs = []
        for r in odd_settings:
            changed = {k: v for k, v in r["settings"].items() if ref.get(k) != v}
            diffs.append(f"{_run(r)} ({', '.join(f'{k}={v}' for k, v in sorted(changed.items()))})")
        figures += "; other settings: " + "; ".join(diffs)
    if missing:
        figures += f"; no provenance for {missing}"
    return ("fail" if odd_code or odd_settings or missing else "pass"), figures


def check_small_lesions(n_q1: int, n_common_q1: int, min_lesions: int) -> tuple[str, str]:
    status = "pass" if n_common_q1 >= min_lesions else ("warn" if n_q1 >= min_lesions else "fail")
    return status, f"{n_q1} Q1 lesions, {n_common_q1} common Q1 lesions; minimum {min_lesions}"


def check_postprocessing(records: list[dict], all_records: list[dict]) -> tuple[str, str]:
    def pp(r):
        return (r["settings"].get("threshold"), r["settings"].get("min_component_voxels"))

    if not records:
        return "fail", "no provenance sidecar"
    study = Counter(pp(r) for r in all_records)
    common, _ = study.most_common(1)[0]
    odd = [r for r in records if pp(r) != common]
    agree = sum(pp(r) == common for r in all_records)
    figures = (f"threshold {common[0]}, min_component_voxels {common[1]} in {agree} of {len(all_records)} tables "
               f"of the study")
    if odd:
        figures += "; differs: " + ", ".join(f"{_run(r)} (threshold {pp(r)[0]}, min_component_voxels {pp(r)[1]})"
                                             for r in odd)
    elif len(study) > 1:
        figures += "; other data sets differ"
    return ("fail" if odd or len(study) > 1 else "pass"), figures


def check_connectivity(records: list[dict]) -> tuple[str, str]:
    expected = {f"{k}d": v for k, v in sorted(FULL_CONNECTIVITY.items())}
    odd = [r for r in records if r["settings"].get("connectivity") != expected]
    figures = (f"lesion table and metrics: {', '.join(f'{k} {v}' for k, v in expected.items())}; "
               f"{len(records) - len(odd)} of {len(records)} metric tables agree")
    if odd:
        figures += "; differs: " + ", ".join(f"{_run(r)} ({r['settings'].get('connectivity')})" for r in odd)
    return ("fail" if odd or not records else "pass"), figures


def check_completeness(test_cases, reference: pd.DataFrame, per_case: list[pd.DataFrame],
                       per_lesion: dict) -> tuple[str, str]:
    """``per_lesion``: {(model, seed): per-lesion DataFrame} (an absent key = an empty table)."""
    test = set(test_cases)
    ref_pairs = set(zip(reference.case_id, reference.lesion_id))
    problems, seen, empty_pred = [], None, []
    evaluated_any = set()
    for pc in per_case:
        run = f"{pc['model'].iloc[0]}/seed{pc['seed'].iloc[0]}"
        cases = set(pc["case_id"])
        if cases != test:
            problems.append(f"{run}: missing cases {sorted(test - cases)[:5]}, unexpected {sorted(cases - test)[:5]}")
        pl = per_lesion.get((pc["model"].iloc[0], int(pc["seed"].iloc[0])))
        pairs = set() if pl is None else set(zip(pl.loc[pl.kind == "reference", "case_id"],
                                                 pl.loc[pl.kind == "reference", "lesion_id"]))
        if pairs - ref_pairs:
            problems.append(f"{run}: lesions not in lesions.csv {sorted(pairs - ref_pairs)[:3]}")
        evaluated_any |= pairs
        if seen is not None and pairs != seen[1]:
            problems.append(f"{run}: lesions differ from {seen[0]} (missing {sorted(seen[1] - pairs)[:3]}, "
                            f"extra {sorted(pairs - seen[1])[:3]})")
        seen = seen or (run, pairs)
        empty_pred.append(int(pc["pred_empty"].sum()))
    ref_empty = int(per_case[0]["ref_empty"].sum()) if per_case else 0
    ignored = len(ref_pairs - evaluated_any)
    figures = (f"{len(per_case)} per-case tables x {len(test)} test cases; {len(evaluated_any)} of "
               f"{len(ref_pairs)} test lesions evaluated ({ignored} under the ignore mask in every table); "
               f"empty reference cases {ref_empty}, empty prediction cases per table "
               f"{min(empty_pred) if empty_pred else 0}-{max(empty_pred) if empty_pred else 0}")
    if not per_case:
        problems.append("no per-case table")
    if problems:
        figures += "; " + "; ".join(problems)
    return ("fail" if problems else "pass"), figures


def border_definition_holds() -> dict:
    """Whether ``surface.border`` equals mask XOR binary_erosion on fixed 2D and 3D masks: {2: bool, 3: bool}."""
    rng = np.random.default_rng(0)
    out = {}
    for ndim, shape in ((2, (17, 13)), (3, (5, 11, 9))):
        mask = ndimage.binary_opening(rng.random(shape) < 0.6)
        mask[(0,) * ndim] = True          # touches the image edge
        out[ndim] = bool(np.array_equal(surface.border(mask), mask ^ ndimage.binary_erosion(mask)))
    return out


def check_borders(records: list[dict], all_records: list[dict], definition: dict) -> tuple[str, str]:
    names = Counter(r["settings"].get("border_function") for r in all_records)
    mine = sorted({str(r["settings"].get("border_function")) for r in records})
    ok = len(names) == 1 and all(definition.values()) and bool(records)
    figures = (f"border function {', '.join(mine) or 'unknown'} in this data set's tables; "
               f"{len(names)} distinct in the study; definition check 2D "
               f"{'ok' if definition[2] else 'FAILED'}, 3D {'ok' if definition[3] else 'FAILED'}")
    return ("pass" if ok else "fail"), figures


def _q1_counts(reference: pd.DataFrame, edges: dict, per_lesion: dict, runs: list) -> tuple[int, int]:
    from .strata import assign_quartile

    q1 = assign_quartile(reference["size_fraction"], edges["q25"], edges["q50"], edges["q75"]) == 0
    q1_pairs = set(zip(reference.case_id[q1], reference.lesion_id[q1]))
    common = set(q1_pairs)
    for run in runs:
        pl = per_lesion.get(run)
        hit = set() if pl is None else set(zip(pl.loc[(pl.kind == "reference") & pl.detected, "case_id"],
                                               pl.loc[(pl.kind == "reference") & pl.detected, "lesion_id"]))
        common &= hit
    return len(q1_pairs), len(common)


def sanity_checks(per_case_paths, per_lesion_paths, split_paths, lesions_paths, quartiles_paths,
                  provenance_paths, small_lesion_table: pd.DataFrame | None, min_lesions: int) -> pd.DataFrame:
    """Every check for every data set; raises only for unreadable inputs, never for a failed check."""
    per_ds: dict = {}
    for kind, paths in (("split", split_paths), ("lesions", lesions_paths), ("quartiles", quartiles_paths)):
        for p in paths:
            per_ds.setdefault(dataset_of(p), {})[kind] = p
    cases: dict[str, list] = {}
    lesions: dict[str, dict] = {}
    records: dict[str, list] = {}
    for p in per_case_paths:
        df = read_metric_table(p, "case")
        cases.setdefault(df["dataset"].iloc[0], []).append(df)
    for p in per_lesion_paths:
        df = read_metric_table(p, "lesion")
        if len(df):
            lesions.setdefault(df["dataset"].iloc[0], {})[(df["model"].iloc[0], int(df["seed"].iloc[0]))] = df
    for p in provenance_paths:
        r = read_provenance(p)
        records.setdefault(r["dataset"], []).append(r)
    all_records = [r for rs in records.values() for r in rs]
    definition = border_definition_holds()
    rows = []
    for ds in sorted(per_ds):
        files = per_ds[ds]
        missing = [k for k in ("split", "lesions", "quartiles") if k not in files]
        if missing:
            raise StudyTableError(f"data set {ds!r}: no {missing} file given")
        test = read_split(files["split"])
        ref = read_reference_lesions(files["lesions"], ds)
        edges = read_quartiles(files["quartiles"], ds)
        pcs = sorted(cases.get(ds, []), key=lambda d: (d["model"].iloc[0], int(d["seed"].iloc[0])))
        runs = [(d["model"].iloc[0], int(d["seed"].iloc[0])) for d in pcs]
        pls = lesions.get(ds, {})
        recs = sorted(records.get(ds, []), key=_run)
        used = ([] if small_lesion_table is None else
                small_lesion_table.loc[small_lesion_table["dataset"] == ds, "q1_upper_bound"].tolist())
        # lesions under the ignore mask everywhere are not part of the evaluated set
        evaluated = set()
        for pl in pls.values():
            ref_rows = pl[pl.kind == "reference"]
            evaluated |= set(zip(ref_rows["case_id"], ref_rows["lesion_id"]))
        evaluated_ref = ref[[p in evaluated for p in zip(ref.case_id, ref.lesion_id)]] if evaluated else ref
        n_q1, n_common = _q1_counts(evaluated_ref, edges, pls, runs)
        results = {
            "quartiles": check_quartiles(ref["size_fraction"].to_numpy(float), edges, used),
            "metric_code": check_metric_code(recs, [f"{m}/seed{s}" for m, s in runs]),
            "small_lesions": check_small_lesions(n_q1, n_common, min_lesions),
            "postprocessing": check_postprocessing(recs, all_records),
            "connectivity": check_connectivity(recs),
            "completeness": check_completeness(test, ref, pcs, pls),
            "borders": check_borders(recs, all_records, definition),
        }
        for check in CHECKS:
            status, figures = results[check]
            rows.append({"dataset": ds, "check": check, "status": status, "figures": figures})
    return pd.DataFrame(rows, columns=SANITY_COLUMNS)


def read_small_lesion_table(path) -> pd.DataFrame:
    return read_table(path, ("dataset", "q1_upper_bound"))
