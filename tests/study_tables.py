"""Synthetic but contract-conforming statistics inputs: split, lesion table, quartile edges and per-case /
per-lesion metric tables for several models and seeds. Test support (not part of the library), used by the
tests and the bootstrap benchmark.

Models differ by a Dice skill and a separate boundary skill, and small lesions are harder, so the tables
look like the study's: close Dice, diverging distances on small lesions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from lesionbench.data.lesions import QUARTILE_COLUMNS, stratum_edges
from lesionbench.io.atomic import write_csv
from lesionbench.stats.tables import DatasetTables, check_dataset

PENALTY_MM = 150.0


def _lesions(rng, dataset: str, cases: list[str], split: dict, mean_lesions: float) -> pd.DataFrame:
    rows = []
    for case in cases:
        n = rng.poisson(mean_lesions)
        sizes = np.exp(rng.normal(np.log(4e-4), 1.2, n))
        for i, s in enumerate(sizes, start=1):
            voxels = max(1, round(s * 160 * 160))
            rows.append(
                {
                    "dataset": dataset,
                    "case_id": case,
                    "split": split[case],
                    "lesion_id": i,
                    "voxels": voxels,
                    "size_fraction": voxels / (160 * 160),
                    "slice_area": voxels,
                    "bbox": "0:1,0:1",
                }
            )
    cols = ["dataset", "case_id", "split", "lesion_id", "voxels", "size_fraction", "slice_area", "bbox"]
    return pd.DataFrame(rows, columns=cols)


def quartile_table(lesions: pd.DataFrame, dataset: str, edge_rule="test_quartiles") -> pd.DataFrame:
    """quartiles.csv of a lesion table by ``edge_rule`` (the data stage's ``stratum_edges``); a test split
    without lesions gives an all-zero row (tests of empty data sets)."""
    if (lesions["split"] == "test").any():
        return pd.DataFrame([stratum_edges(lesions, edge_rule, dataset)])[QUARTILE_COLUMNS]
    return pd.DataFrame(
        [
            {
                "dataset": dataset,
                "edge_rule": "test_quartiles",
                "edge_lesions": 0,
                "n_lesions": 0,
                "min": 0.0,
                "q25": 0.0,
                "q50": 0.0,
                "q75": 0.0,
                "max": 0.0,
            }
        ]
    )[QUARTILE_COLUMNS]


def make_dataset(
    dataset: str = "toy",
    n_cases: int = 40,
    models=("unet", "resunet", "attention_unet", "hybrid_transformer"),
    seeds=(0,),
    mean_lesions: float = 4.0,
    seed: int = 0,
    edge_rule="test_quartiles",
) -> dict:
    """All input tables of one synthetic data set as DataFrames: split, lesions, quartiles, per_case
    (dict (model, seed) -> DataFrame) and per_lesion (same keys)."""
    rng = np.random.default_rng(seed)
    test = [f"case{i:03d}" for i in range(n_cases)]
    train = [f"train{i:03d}" for i in range(3)]
    split = {**{c: "test" for c in test}, **{c: "train" for c in train}}
    split_df = pd.DataFrame({"case_id": sorted(split), "split": [split[c] for c in sorted(split)]})
    lesions = _lesions(rng, dataset, sorted(split), split, mean_lesions)
    ref = lesions[lesions.split == "test"].reset_index(drop=True)
    sizes = ref["size_fraction"].to_numpy(float)
    quartiles = quartile_table(lesions, dataset, edge_rule)
    per_case, per_lesion = {}, {}
    for mi, model in enumerate(models):
        dice_skill = 0.80 + 0.01 * mi
        boundary_skill = 1.0 + 0.6 * ((mi * 7) % len(models)) / max(1, len(models) - 1)
        for s in seeds:
            r = np.random.default_rng([seed, mi, s])
            small = np.log(sizes / 4e-4) if len(sizes) else sizes
            detected = r.random(len(ref)) < 1 / (1 + np.exp(-(1.5 + 0.9 * small - 0.2 * mi)))
            dice = np.clip(dice_skill + 0.06 * small + r.normal(0, 0.08, len(ref)), 0.01, 1.0) * detected
            dist = np.abs(r.normal(1.0, 0.5, len(ref))) * boundary_skill * (1 + np.exp(-small))
            hd95 = np.where(detected, dist * 2.0, PENALTY_MM)
            asd = np.where(detected, dist * 0.7, PENALTY_MM)
            cf1 = np.where(detected, np.clip(1.0 - 0.25 * dist + r.normal(0, 0.05, len(ref)), 0, 1), 0.0)
            nsd = np.where(detected, np.clip(cf1 + r.normal(0, 0.03, len(ref)), 0, 1), 0.0)
            ref_rows = pd.DataFrame(
                {
                    "dataset": dataset,
                    "model": model,
                    "seed": s,
                    "case_id": ref.case_id,
                    "kind": "reference",
                    "lesion_id": ref.lesion_id,
                    "merged_lesion_id": ref.lesion_id,
                    "voxels": ref.voxels,
                    "size_fraction": ref.size_fraction,
                    "detected": detected,
                    "dice": dice,
                    "iou": dice / (2 - dice),
                    "hd95": hd95,
                    "asd": asd,
                    "contour_f1": cf1,
                    "nsd": nsd,
                }
            )
            fp_rows = []
            for case in test:
                for j in range(1, r.poisson(0.4 + 0.1 * mi) + 1):
                    vox = int(r.integers(3, 40))
                    fp_rows.append(
                        {
                            "dataset": dataset,
                            "model": model,
                            "seed": s,
                            "case_id": case,
                            "kind": "false_positive",
                            "lesion_id": j,
                            "merged_lesion_id": 0,
                            "voxels": vox,
                            "size_fraction": vox / (160 * 160),
                            "detected": False,
                            "dice": 0.0,
                            "iou": 0.0,
                            "hd95": PENALTY_MM,
                            "asd": PENALTY_MM,
                            "contour_f1": 0.0,
                            "nsd": 0.0,
                        }
                    )
            pl = pd.concat([ref_rows, pd.DataFrame(fp_rows, columns=ref_rows.columns)], ignore_index=True)
            pl = pl.sort_values(["case_id", "kind", "lesion_id"]).reset_index(drop=True)
            n_ref = ref.groupby("case_id").size().reindex(test, fill_value=0).to_numpy()
            n_hit = ref_rows.groupby("case_id")["detected"].sum().reindex(test, fill_value=0).to_numpy()
            n_fp = pl[pl.kind == "false_positive"].groupby("case_id").size().reindex(test, fill_value=0).to_numpy()
            cd = np.clip(dice_skill + r.normal(0, 0.06, n_cases), 0, 1)
            cdist = np.abs(r.normal(3.0, 1.5, n_cases)) * boundary_skill
            cf = np.clip(0.9 - 0.05 * cdist + r.normal(0, 0.03, n_cases), 0, 1)
            per_case[(model, s)] = pd.DataFrame(
                {
                    "dataset": dataset,
                    "model": model,
                    "seed": s,
                    "case_id": test,
                    "ref_empty": n_ref == 0,
                    "pred_empty": False,
                    "ref_voxels": 100 * n_ref,
                    "pred_voxels": 100 * n_hit + 10 * n_fp,
                    "dice": cd,
                    "iou": cd / (2 - cd),
                    "hd95": cdist * 3,
                    "asd": cdist,
                    "contour_f1": cf,
                    "nsd": np.clip(cf + 0.02, 0, 1),
                    "n_ref_lesions": n_ref,
                    "n_hit_lesions": n_hit,
                    "n_fp_lesions": n_fp,
                }
            )
            per_lesion[(model, s)] = pl
    return {
        "dataset": dataset,
        "split": split_df,
        "lesions": lesions,
        "quartiles": quartiles,
        "per_case": per_case,
        "per_lesion": per_lesion,
    }


def to_tables(data: dict) -> DatasetTables:
    """In-memory DatasetTables of ``make_dataset`` output (checked like files read from disk)."""
    per_case = pd.concat(data["per_case"].values(), ignore_index=True)
    per_lesion = pd.concat(data["per_lesion"].values(), ignore_index=True)
    per_case["source_file"] = "per_case.csv"
    per_lesion["source_file"] = "per_lesion.csv"
    q = data["quartiles"].iloc[0]
    lesions = data["lesions"]
    ref = lesions[lesions.split == "test"][["case_id", "lesion_id", "size_fraction"]].reset_index(drop=True)
    tables = DatasetTables(
        dataset=data["dataset"],
        per_case=per_case,
        per_lesion=per_lesion,
        test_cases=tuple(sorted(data["split"].loc[data["split"].split == "test", "case_id"])),
        reference=ref,
        edges={k: float(q[k]) for k in ("min", "q25", "q50", "q75", "max")}
        | {"n_lesions": int(q["n_lesions"]), "edge_lesions": int(q["edge_lesions"]), "edge_rule": str(q["edge_rule"])},
        models=tuple(sorted({m for m, _ in data["per_case"]})),
        seeds=tuple(sorted({s for _, s in data["per_case"]})),
    )
    return check_dataset(tables, "split.csv", "lesions.csv", "quartiles.csv", lesions=lesions)


def write_dataset(data: dict, root: str | os.PathLike, settings=None) -> dict:
    """Write ``make_dataset`` output in the results layout under ``root``, with a provenance sidecar per
    metric table as the evaluation writes it (``settings``: an ``evaluation.Settings`` applied to every model,
    or {(model, seed): Settings}; default tolerance 1 mm, dilation 2 mm). Returns the file lists."""
    from lesionbench.evaluation import Settings
    from lesionbench.evaluation.provenance import write_provenance

    root = Path(root)
    ds = data["dataset"]
    folder = root / "data" / ds
    paths = {
        "split": [folder / "split.csv"],
        "lesions": [folder / "lesions.csv"],
        "quartiles": [folder / "quartiles.csv"],
        "per_case": [],
        "per_lesion": [],
        "provenance": [],
    }
    write_csv(data["split"], paths["split"][0])
    write_csv(data["lesions"], paths["lesions"][0])
    write_csv(data["quartiles"], paths["quartiles"][0])
    for (model, seed), df in sorted(data["per_case"].items()):
        out = root / "metrics" / ds / model / f"seed{seed}"
        write_csv(df, out / "per_case.csv")
        write_csv(data["per_lesion"][(model, seed)], out / "per_lesion.csv")
        paths["per_case"].append(out / "per_case.csv")
        paths["per_lesion"].append(out / "per_lesion.csv")
        chosen = settings.get((model, seed)) if isinstance(settings, dict) else settings
        write_provenance(
            out / "provenance.json",
            chosen or Settings(tolerance_mm=1.0, dilation_mm=2.0),
            dataset=ds,
            model=model,
            seed=seed,
        )
        paths["provenance"].append(out / "provenance.json")
    return {k: [str(p) for p in v] for k, v in paths.items()}


def dataset_from_rows(
    dataset: str,
    test_cases,
    lesions,
    case_metrics: dict,
    lesion_rows: dict,
    train_cases=("train000",),
    train_lesions=(),
    edge_rule="test_quartiles",
) -> dict:
    """Hand-made tables in the ``make_dataset`` form, for tests.

    lesions: [(case_id, lesion_id, size_fraction)] test-split reference lesions.
    case_metrics: {(model, seed): {case_id: {metric: value}}} (missing metrics default to Dice-like 1.0 /
    distance 0.0). lesion_rows: {(model, seed): [{case_id, kind, lesion_id, size_fraction, detected, metric:
    value, ...}]}; reference rows may omit size_fraction (taken from ``lesions``) and merged_lesion_id (default:
    the lesion's own id; false positives 0). train_lesions: lesions of
    the training cases (same form), for the ``train_quartiles`` edge rule. Lesion counts of the
    per-case table are derived from the lesion rows, so the tables are consistent by construction.
    """
    test_cases = sorted(test_cases)
    split_map = {**{c: "test" for c in test_cases}, **{c: "train" for c in train_cases}}
    split = pd.DataFrame({"case_id": sorted(split_map), "split": [split_map[c] for c in sorted(split_map)]})
    les = pd.DataFrame(
        [
            {
                "dataset": dataset,
                "case_id": c,
                "split": split_map[c],
                "lesion_id": int(i),
                "voxels": 1,
                "size_fraction": float(s),
                "slice_area": 1,
                "bbox": "0:1,0:1",
            }
            for c, i, s in sorted(list(lesions) + list(train_lesions))
        ],
        columns=["dataset", "case_id", "split", "lesion_id", "voxels", "size_fraction", "slice_area", "bbox"],
    )
    quartiles = quartile_table(les, dataset, edge_rule)
    size_of = {(c, int(i)): float(s) for c, i, s in lesions}
    defaults = {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "asd": 0.0, "contour_f1": 1.0, "nsd": 1.0}
    per_case, per_lesion = {}, {}
    for (model, seed), by_case in case_metrics.items():
        rows = []
        for r in lesion_rows.get((model, seed), []):
            row = {"dataset": dataset, "model": model, "seed": seed, "voxels": 1, "detected": False, **defaults, **r}
            if row["kind"] == "reference" and "size_fraction" not in r:
                row["size_fraction"] = size_of[(r["case_id"], int(r["lesion_id"]))]
            # each reference lesion its own merged lesion unless the row says otherwise
            row.setdefault("merged_lesion_id", int(r["lesion_id"]) if row["kind"] == "reference" else 0)
            rows.append(row)
        pl = pd.DataFrame(
            rows,
            columns=[
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
                *defaults,
            ],
        )
        ref = pl[pl.kind == "reference"]
        n_ref = ref.groupby("case_id").size().reindex(test_cases, fill_value=0)
        n_hit = ref.groupby("case_id")["detected"].sum().reindex(test_cases, fill_value=0)
        n_fp = pl[pl.kind == "false_positive"].groupby("case_id").size().reindex(test_cases, fill_value=0)
        per_case[(model, seed)] = pd.DataFrame(
            [
                {
                    "dataset": dataset,
                    "model": model,
                    "seed": seed,
                    "case_id": c,
                    "ref_empty": bool(n_ref[c] == 0),
                    "pred_empty": False,
                    "ref_voxels": int(n_ref[c]),
                    "pred_voxels": 1,
                    **defaults,
                    **by_case.get(c, {}),
                    "n_ref_lesions": int(n_ref[c]),
                    "n_hit_lesions": int(n_hit[c]),
                    "n_fp_lesions": int(n_fp[c]),
                }
                for c in test_cases
            ]
        )
        per_lesion[(model, seed)] = pl
    return {
        "dataset": dataset,
        "split": split,
        "lesions": les,
        "quartiles": quartiles,
        "per_case": per_case,
        "per_lesion": per_lesion,
    }
