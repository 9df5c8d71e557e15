"""``lesionbench-evaluate``: evaluate a folder of predictions (from any tool) against prepared references.

    lesionbench-evaluate --predictions results/predictions/wmh/nnunet/seed0 \\
        --prepared results/data/wmh/prepared --split results/data/wmh/split.csv \\
        --lesions results/data/wmh/lesions.csv --config config/config.yaml --dataset wmh \\
        --out results/metrics/wmh/nnunet/seed0

Writes ``per_case.csv`` and ``per_lesion.csv`` into ``--out``. Settings come from the pipeline config
(``--config`` with ``--dataset``) and may be given or overridden one by one. The model name and seed
default to the predictions folder (``.../{model}/seed{seed}``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .folder import EvaluationError, Settings, evaluate_to_files, model_and_seed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lesionbench-evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument("--predictions", required=True, type=Path, help="folder of {case_id}.png / .nii.gz")
    p.add_argument("--prepared", required=True, type=Path, help="prepared cases folder of the data set")
    p.add_argument("--split", required=True, type=Path, help="split.csv (its test cases are evaluated)")
    p.add_argument("--lesions", type=Path, help="lesions.csv to check the reference lesion ids against")
    p.add_argument("--out", required=True, type=Path, help="output folder for per_case.csv and per_lesion.csv")
    p.add_argument("--config", type=Path, help="pipeline config to read the settings of --dataset from")
    p.add_argument("--dataset", help="data set name (default: from the prepared cases' meta.json)")
    p.add_argument("--model", help="model name (default: from the predictions folder)")
    p.add_argument("--seed", type=int, help="seed (default: from the predictions folder, else 0)")
    p.add_argument("--tolerance-mm", type=float, help="contour F1 / NSD tolerance tau in mm")
    p.add_argument("--dilation-mm", type=float, help="lesion dilation radius r in mm")
    p.add_argument("--penalty-mm", type=float, help="distance for an empty mask (default: image diagonal)")
    p.add_argument("--threshold", type=float, help="postprocessing threshold (default 0.5)")
    p.add_argument("--min-component-voxels", type=int, help="postprocessing: smallest kept component")
    p.add_argument(
        "--surface",
        choices=["voxel", "surfel"],
        help="surface definition of HD95, ASD, contour F1 and NSD (default: the config's, else voxel)",
    )
    return p


def _dataset_name(args) -> str:
    if args.dataset:
        return args.dataset
    from ..io.cases import list_cases, read_meta

    ids = list_cases(args.prepared) if args.prepared.is_dir() else []
    name = read_meta(args.prepared, ids[0]).get("dataset") if ids else None
    return name or args.prepared.parent.name


def settings_from_args(args, dataset: str) -> Settings:
    ds_eval, post, penalty, surface = {}, {}, None, "voxel"
    if args.config:
        import yaml

        try:
            config = yaml.safe_load(args.config.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise EvaluationError(f"{args.config}: unreadable config ({exc})") from exc
        if dataset not in config.get("datasets", {}):
            raise EvaluationError(f"{args.config}: no data set {dataset!r} (has {sorted(config.get('datasets', {}))})")
        ds_eval = dict(config["datasets"][dataset].get("evaluation", {}))
        post = dict(config.get("postprocessing", {}))
        penalty = (config.get("evaluation") or {}).get("distance_penalty_mm")
        surface = (config.get("evaluation") or {}).get("surface_definition", surface)
    for key, value in (("contour_tolerance_mm", args.tolerance_mm), ("lesion_dilation_mm", args.dilation_mm)):
        if value is not None:
            ds_eval[key] = value
    for key, value in (("threshold", args.threshold), ("min_component_voxels", args.min_component_voxels)):
        if value is not None:
            post[key] = value
    if args.penalty_mm is not None:
        penalty = args.penalty_mm
    if args.surface is not None:
        surface = args.surface
    missing = [k for k in ("contour_tolerance_mm", "lesion_dilation_mm") if k not in ds_eval]
    if missing:
        raise EvaluationError(
            f"no {' / '.join(missing)}: pass --config with --dataset, or --tolerance-mm and --dilation-mm"
        )
    return Settings.from_config(ds_eval, post, penalty, surface_definition=surface)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        dataset = _dataset_name(args)
        model, seed = model_and_seed(args.predictions)
        settings = settings_from_args(args, dataset)
        evaluate_to_files(
            args.predictions,
            args.prepared,
            args.split,
            args.out / "per_case.csv",
            args.out / "per_lesion.csv",
            dataset=dataset,
            model=args.model or model,
            seed=seed if args.seed is None else args.seed,
            settings=settings,
            lesions_csv=args.lesions,
        )
    except (EvaluationError, ValueError, OSError) as exc:
        print(f"lesionbench-evaluate: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
