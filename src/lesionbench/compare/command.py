"""``lesionbench compare``: reference masks and prediction folders in, the whole stratified study out.

    lesionbench compare --reference nnUNet_raw/Dataset501_Lesions \\
        --predictions nnunet_3d=predictions/3d_fullres --predictions nnunet_2d=predictions/2d --out compare_out

Several data sets in one study (per-data-set and pooled tables and verdict):

    lesionbench compare --reference liver=Task03_Liver --reference brain=Dataset501_Lesions \\
        --predictions liver/nnunet=pred/liver --predictions brain/nnunet=pred/brain \\
        --predictions liver/medsam=pred2/liver --predictions brain/medsam=pred2/brain --out compare_out

A thin wrapper: it checks the folders (layout, case names, missing and extra prediction files) and each
case's files (dimensionality, shape, NaN, probability maps) before anything runs, writes a pipeline config
into ``--out/config.yaml`` (evaluation-only data sets, source ``references``, every case a test case; the
prediction folders as ``external_models``; no model is trained) and runs the workflow on it with Snakemake
(its output goes to ``--out/logs/snakemake.log``), then prints the answer (``--out/answer/summary.txt``) and
the path of ``--out/report.html``. An error ends the output in one line naming the case, file and problem.
Outputs in ``--out``: ``metrics/DATASET/MODEL/seed0/per_case.csv`` and ``per_lesion.csv``,
``summary/DATASET.json``, every study table (``overall_metrics.csv`` ...), ``answer/``, ``figures/`` and
``report.html`` (docs/results.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ..data.sources import SourceError
from ..io.atomic import atomic_path
from ..io.predictions import PredictionError
from ..resources import workflow_root
from .failure import failure_line
from .inputs import CompareError, DatasetInput, check_folders, parse_datasets, precheck
from .runner import run_logged

DEFAULT_TOLERANCE_MM = 1.0
DEFAULT_DILATION_MM = 2.0
SURFACE_DEFINITIONS = ("voxel", "surfel")

__all__ = ["CompareError", "main", "run", "run_main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reference",
        required=True,
        action="append",
        metavar="[NAME=]DIR",
        help="reference masks: nnU-Net raw data set (dataset.json + labelsTs/ or labelsTr/), MSD task "
        "folder, a folder with masks/, or a folder of mask files. Repeat as NAME=DIR for several data sets "
        "(one study, per-data-set and pooled tables); one unnamed DIR is named after its folder (or --name)",
    )
    p.add_argument(
        "--predictions",
        required=True,
        action="append",
        metavar="[DATASET/]MODEL=DIR",
        help="a model's prediction folder (files named like the references); repeat per model (and per data "
        "set as DATASET/MODEL=DIR, or MODEL=DIR with {dataset} in DIR)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--name", metavar="NAME", help="name of the one data set (default: the reference folder's name)")
    p.add_argument(
        "--images",
        action="append",
        metavar="[NAME=]DIR",
        help="images ({case}.<ext> or {case}_0000.<ext>) for the qualitative figure (default: masks only); "
        "NAME=DIR per data set",
    )
    p.add_argument(
        "--tolerance-mm",
        type=float,
        default=DEFAULT_TOLERANCE_MM,
        metavar="T",
        help=f"contour F1 / NSD tolerance in mm (default {DEFAULT_TOLERANCE_MM})",
    )
    p.add_argument(
        "--dilation-mm",
        type=float,
        default=DEFAULT_DILATION_MM,
        metavar="R",
        help=f"lesion dilation radius of the lesion-wise matching in mm (default {DEFAULT_DILATION_MM})",
    )
    p.add_argument(
        "--surface",
        choices=SURFACE_DEFINITIONS,
        default="voxel",
        help="surface definition of HD95, ASD, contour F1 and NSD: voxel (border-voxel centres, MONAI's "
        "default) or surfel (area-weighted surface elements on the voxel-corner grid, as "
        "google-deepmind/surface-distance and MONAI use_subvoxels=True); docs/metrics.md (default voxel)",
    )
    p.add_argument("--penalty-mm", type=float, metavar="P", help="distance of an empty mask (default: image diagonal)")
    p.add_argument(
        "--threshold",
        type=float,
        metavar="X",
        help="read predictions as probability maps: foreground = value >= X (floats in [0, 1], or uint8 "
        "/ 255); without it only binary masks (0/1, 0/255) and label maps are accepted",
    )
    p.add_argument(
        "--min-component-voxels",
        type=int,
        default=0,
        metavar="N",
        help="drop predicted components smaller than N voxels (default 0: keep all)",
    )
    p.add_argument(
        "--spacing",
        type=float,
        nargs=2,
        metavar=("SY", "SX"),
        help="pixel spacing in mm of PNG/TIFF masks (default 1 1; NIfTI spacing comes from the header)",
    )
    p.add_argument(
        "--lesion-labels",
        type=int,
        nargs="+",
        metavar="L",
        help="label values that are lesion (default: every non-zero label not ignored)",
    )
    p.add_argument(
        "--ignore-labels",
        type=int,
        nargs="+",
        metavar="L",
        help="label values excluded from every metric (default: nnU-Net's 'ignore' label, else none)",
    )
    p.add_argument(
        "--missing-as-empty",
        action="store_true",
        help="score a case without a prediction file as an empty prediction (flagged missing_prediction)",
    )
    p.add_argument("--cores", type=int, metavar="N", help="Snakemake cores (default: all, or the profile's)")
    p.add_argument(
        "--profile",
        metavar="PROFILE",
        help="Snakemake workflow profile: a name under workflow/profiles (laptop, slurm) or a folder",
    )
    p.add_argument(
        "--verbose", action="store_true", help="show Snakemake's output as it runs (it always goes to the log)"
    )


def prediction_links(out: Path, datasets: dict[str, DatasetInput]) -> dict[str, str]:
    """external_models of several data sets: one folder pattern per model, ``out/inputs/{dataset}/MODEL``,
    each a symbolic link to that data set's prediction folder (the config holds one folder per model)."""
    models = sorted({m for d in datasets.values() for m in d.predictions})
    for ds in datasets.values():
        for model, folder in ds.predictions.items():
            link = out / "inputs" / ds.name / model
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                if link.resolve() == folder:
                    continue
                link.unlink()
            link.symlink_to(folder, target_is_directory=True)
    return {m: str(out / "inputs" / "{dataset}" / m) for m in models}


def dataset_block(args, ds: DatasetInput) -> dict[str, Any]:
    block: dict[str, Any] = {
        "source": "references",
        "modality": "reference masks",
        "path": str(ds.reference),
        "split": {"all_test": True},
        "preprocessing": {"normalization": "minmax", "resize": None},
        "evaluation": {"contour_tolerance_mm": float(args.tolerance_mm), "lesion_dilation_mm": float(args.dilation_mm)},
    }
    if ds.images:
        block["images"] = str(ds.images)
    if args.spacing:
        block["spacing"] = [float(s) for s in args.spacing]
    labels = {k: list(v) for k, v in (("lesion", args.lesion_labels), ("ignore", args.ignore_labels)) if v}
    if labels:
        block["labels"] = labels
    return block


def build_config(args, datasets: dict[str, DatasetInput], external: dict[str, str] | None = None) -> dict:
    """The pipeline config of the run (absolute paths, so it runs from any working directory). ``external``:
    the external_models (default: the prediction folders of the one data set)."""
    out = args.out.expanduser().resolve()
    if external is None:
        if len(datasets) != 1:
            raise CompareError("several data sets need their prediction links (prediction_links)")
        external = {m: str(p) for m, p in next(iter(datasets.values())).predictions.items()}
    post: dict[str, Any] = {"min_component_voxels": int(args.min_component_voxels)}
    if args.threshold is not None:
        post["threshold"] = float(args.threshold)
    evaluation: dict[str, Any] = {
        "distance_penalty_mm": args.penalty_mm,
        "probability_maps": args.threshold is not None,
        "missing_predictions": "empty" if args.missing_as_empty else "error",
    }
    if getattr(args, "surface", "voxel") != "voxel":
        evaluation["surface_definition"] = args.surface
    return {
        "results": str(out),
        "figures": str(out / "figures"),
        "device": "cpu",
        "seeds": [0],
        "datasets": {name: dataset_block(args, ds) for name, ds in sorted(datasets.items())},
        "models": {},
        "external_models": dict(sorted(external.items())),
        "training": {},
        "postprocessing": post,
        "evaluation": evaluation,
        "statistics": {},
    }


def check_settings(args) -> None:
    for flag, value, low in (("--tolerance-mm", args.tolerance_mm, 0.0), ("--dilation-mm", args.dilation_mm, 0.0)):
        if not value > low and not (flag == "--dilation-mm" and value == 0):
            raise CompareError(f"{flag} must be a positive number of mm, got {value}")
    if args.penalty_mm is not None and not args.penalty_mm > 0:
        raise CompareError(f"--penalty-mm must be positive, got {args.penalty_mm}")
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise CompareError(f"--threshold must lie in (0, 1), got {args.threshold}")
    if args.min_component_voxels < 0:
        raise CompareError(f"--min-component-voxels must be >= 0, got {args.min_component_voxels}")
    if args.spacing and not all(s > 0 for s in args.spacing):
        raise CompareError(f"--spacing must be two positive numbers, got {args.spacing}")


def snakemake_command(root: Path, config_path: Path, out: Path, cores: int | None, profile: str | None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(root / "Snakefile"),
        "--directory",
        str(out),
        "--configfile",
        str(config_path),
        "--show-failed-logs",
    ]
    if profile:
        named = root / "workflow" / "profiles" / profile
        folder = named if named.is_dir() else Path(profile).expanduser().resolve()
        if not folder.is_dir():
            raise CompareError(
                f"--profile {profile!r}: no such profile (workflow/profiles/: "
                f"{sorted(p.name for p in (root / 'workflow' / 'profiles').iterdir())}) or folder"
            )
        cmd += ["--workflow-profile", str(folder)]
    if cores is not None or not profile:
        cmd += ["--cores", str(cores if cores is not None else (os.cpu_count() or 1))]
    return cmd


def library_env(root: Path) -> dict[str, str]:
    """The environment of the Snakemake call: a checkout's src/ first on the path (an installed workflow
    runs the installed package)."""
    if not (root / "src" / "lesionbench").is_dir():
        return dict(os.environ)
    paths = [str(root / "src")] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def say(text: str) -> None:
    print(text, flush=True)


def run(args) -> int:
    datasets = parse_datasets(args.reference, args.predictions, args.images, args.name)
    check_settings(args)
    root = workflow_root()
    n_cases = {}
    for ds in datasets.values():
        layout, warnings = check_folders(ds, args.missing_as_empty)
        for warning in warnings:
            say(f"warning: {warning}")
        precheck(ds, layout, args.threshold is not None)
        n_cases[ds.name] = len(layout.masks)
    out = args.out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    external = prediction_links(out, datasets) if len(datasets) > 1 else None
    config = build_config(args, datasets, external)
    config_path = out / "config.yaml"
    with atomic_path(config_path, suffix=".yaml") as tmp:
        tmp.write_text(
            "# Written by `lesionbench compare`; rerun with: snakemake --snakefile "
            + str(root / "Snakefile")
            + " --configfile "
            + str(config_path)
            + "\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
    models = sorted({m for d in datasets.values() for m in d.predictions})
    log_path = out / "logs" / "snakemake.log"
    cases = ", ".join(f"{name} ({n} cases)" for name, n in n_cases.items())
    say(f"lesionbench compare: {len(models)} model(s) on {cases}; inputs checked")
    say(f"running the workflow ({root / 'Snakefile'}); its output: {log_path}")
    cmd = snakemake_command(root, config_path, out, args.cores, args.profile)
    # one Snakemake call runs the study and then writes the report (a second call would rebuild the DAG)
    report = out / "report.html"
    cmd += ["--report", str(report), "--report-after-run"]
    code, output = run_logged(cmd, library_env(root), log_path, args.verbose)
    if code != 0:
        raise CompareError(
            f"{failure_line(output)} [Snakemake's output: {log_path}; rerun the same command after the fix: "
            f"finished steps are kept]"
        )
    summary = out / "answer" / "summary.txt"
    say(summary.read_text().rstrip() if summary.is_file() else f"done: {out}")
    say(f"Tables: {out} (summary/<data set>.json, *.csv, figures/)")
    return 0


def main(argv: list[str] | None = None, prog: str = "lesionbench compare") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_main(args)


def run_main(args) -> int:
    try:
        return run(args)
    except (CompareError, PredictionError, SourceError, OSError) as exc:
        # the cause as the last line, without a traceback: several lines of a list are joined
        print(f"lesionbench compare: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
