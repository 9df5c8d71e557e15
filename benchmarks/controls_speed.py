"""Speed of building and calibrating the controls of the three default data sets (budget: 30 s on 2 cores).

The default configuration's synthetic data sets are generated and prepared into a temporary folder first
(not timed; an existing results folder can be given instead), then, per data set, every control of the
default ``controls`` block (five positive, two negative) is calibrated to ``dice_target`` and its
predictions written, exactly as the ``controls_predictions`` rule does. Beside it, for scale: the cost of
evaluating one control's predictions with the full metric engine, which the calibration never runs (it
only needs the cheap Dice).

    .venv/bin/python benchmarks/controls_speed.py [--data results/data] [--config config/config.yaml]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import yaml

from lesionbench.controls import ControlSettings, build_dataset_controls, control_specs
from lesionbench.data.steps import acquire as acquire_step
from lesionbench.data.steps import prepare as prepare_step
from lesionbench.data.steps import split as split_step
from lesionbench.evaluation import Settings, evaluate_folder, test_case_ids

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 30.0


def schema_defaults(section: str) -> dict:
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    props = schema["properties"][section]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def prepare_default_data(config: dict, root: Path) -> None:
    for name, ds in config["datasets"].items():
        folder = root / name
        acquire_step.run(name, ds, folder / "raw", folder / "raw_manifest.csv")
        split_step.run(name, ds["split"], folder / "raw_manifest.csv", folder / "split.csv")
        prepare_step.run(
            name,
            ds,
            folder / "raw_manifest.csv",
            folder / "split.csv",
            folder / "raw",
            folder / "prepared",
            folder / "cases.csv",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a results/data folder holding the default data sets (default: generate them)",
    )
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = yaml.safe_load(args.config.read_text())
    block = {**schema_defaults("controls"), **(config.get("controls") or {})}
    settings = ControlSettings.from_config(block)
    post = {**schema_defaults("postprocessing"), **config.get("postprocessing", {})}
    names = [s.name for s in control_specs(settings)]

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            t0 = time.perf_counter()
            prepare_default_data(config, data)
            print(f"default data sets generated and prepared in {time.perf_counter() - t0:.1f} s (not timed)")
        total, rows = 0.0, []
        for name in sorted(config["datasets"]):
            out = {n: Path(tmp) / "controls" / name / n / "seed0" for n in names}
            t0 = time.perf_counter()
            table = build_dataset_controls(
                data / name / "prepared",
                data / name / "split.csv",
                out,
                dataset=name,
                settings=settings,
                min_component_voxels=int(post["min_component_voxels"]),
                threshold=float(post["threshold"]),
            )
            seconds = time.perf_counter() - t0
            total += seconds
            rows.append((name, seconds, table))
            print(
                f"{name}: {len(names)} controls, {int(table.n_test_cases.iloc[0])} test cases, "
                f"{int(table.n_lesions.iloc[0])} lesions: {seconds:.1f} s, {int(table.evaluations.sum())} Dice "
                f"evaluations; Dice {table.dice.min():.4f}..{table.dice.max():.4f} "
                f"(target {settings.dice_target}, all within {settings.tolerance}: "
                f"{bool(table.within_tolerance.all())})"
            )
        name, _, table = rows[0]
        ev = config["datasets"][name]["evaluation"]
        t0 = time.perf_counter()
        evaluate_folder(
            Path(tmp) / "controls" / name / names[0] / "seed0",
            data / name / "prepared",
            test_case_ids(data / name / "split.csv"),
            dataset=name,
            model=names[0],
            seed=0,
            settings=Settings.from_config(ev, post),
        )
        full = time.perf_counter() - t0
        per_eval = rows[0][1] / max(int(table.evaluations.sum()), 1)
        print(
            f"side by side on {name}: one calibration step (all lesions perturbed, cheap Dice) "
            f"{per_eval * 1e3:.0f} ms vs one full metric evaluation of one control {full * 1e3:.0f} ms"
        )
        print(f"controls of {len(rows)} data sets built and calibrated in {total:.1f} s (budget {BUDGET_S:.0f} s)")
        if total >= BUDGET_S:
            raise SystemExit(f"controls took {total:.1f} s, budget is {BUDGET_S:.0f} s")


if __name__ == "__main__":
    main()
