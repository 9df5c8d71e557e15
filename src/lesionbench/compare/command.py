"""``lesionbench compare``: reference masks and prediction folders in, the whole stratified study out.

    lesionbench compare --reference nnUNet_raw/Dataset501_Lesions \\
        --predictions nnunet_3d=predictions/3d_fullres --predictions nnunet_2d=predictions/2d --out compare_out

A thin wrapper: it checks the folders (layout, case names, missing and extra prediction files), writes a
pipeline config into ``--out/config.yaml`` (an evaluation-only data set, source ``references``, every case a
test case; the prediction folders as ``external_models``; no model is trained) and runs the workflow on it
with Snakemake, then builds ``--out/report.html``. ``snakemake --configfile OUT/config.yaml`` (from the
repository) gives the same outputs. Outputs in ``--out``: ``metrics/NAME/per_case.csv`` and
``per_lesion.csv``, ``summary.json``, every study table (``overall_metrics.csv`` ...), ``figures/`` and
``report.html`` (docs/results.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ..data.sources import SourceError
from ..data.sources.references import discover, image_files
from ..io.atomic import atomic_path
from ..io.predictions import PredictionError, prediction_files

log = logging.getLogger("lesionbench.compare")

DATASET = "reference"  # the data set name of a compare run (results under data/reference/, metrics/reference/)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
RESERVED = {"unet", "resunet", "attention_unet", "hybrid_transformer"}  # trained model names (config schema)
DEFAULT_TOLERANCE_MM = 1.0
DEFAULT_DILATION_MM = 2.0


class CompareError(ValueError):
    """Bad input of ``lesionbench compare``; the message names the folder, case or file."""


def repository() -> Path:
    """The workflow checkout this library belongs to (the Snakefile beside ``src/``)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "Snakefile").is_file():
        raise CompareError(
            f"{root}: no Snakefile; lesionbench compare runs from a checkout of the repository (pip install -e .)"
        )
    return root


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reference",
        required=True,
        type=Path,
        metavar="DIR",
        help="reference masks: nnU-Net raw data set (dataset.json + labelsTs/ or labelsTr/), MSD task "
        "folder, a folder with masks/, or a folder of mask files",
    )
    p.add_argument(
        "--predictions",
        required=True,
        action="append",
        metavar="NAME=DIR",
        help="a model's prediction folder (files named like the references); repeat per model",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="images ({case}.<ext> or {case}_0000.<ext>) for the qualitative figure (default: masks only)",
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


def parse_predictions(items: list[str]) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise CompareError(f"--predictions {item!r}: expected NAME=DIR")
        if not NAME.match(name) or name in RESERVED:
            raise CompareError(
                f"--predictions {item!r}: NAME must be letters, digits, _ or - (starting with a letter "
                f"or digit) and not one of {sorted(RESERVED)}"
            )
        if name in models:
            raise CompareError(f"--predictions: model name {name!r} is given twice")
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise CompareError(f"--predictions {name}={folder}: folder not found")
        models[name] = path
    return models


def check_inputs(args, models: dict[str, Path]) -> list[str]:
    """Check the folders before anything is written; returns warnings, raises CompareError on bad input."""
    try:
        layout = discover(args.reference, args.images)
        if layout.images_dir:
            image_files(layout.images_dir, sorted(layout.masks))
    except (SourceError, FileNotFoundError) as exc:
        raise CompareError(str(exc)) from exc
    ids = set(layout.masks)
    log.info("%s: %s layout, %d reference cases in %s", args.reference, layout.kind, len(ids), layout.masks_dir)
    problems, warnings = [], []
    for name, folder in models.items():
        files = prediction_files(folder)
        doubled = sorted(c for c in ids if len(files.get(c, [])) > 1)
        if doubled:
            problems.append(
                f"{folder}: two prediction files for case(s) "
                + "; ".join(f"{c} ({', '.join(p.name for p in files[c])})" for c in doubled)
            )
        missing = sorted(ids - set(files))
        if missing:
            text = f"{folder} ({name}): {len(missing)} of {len(ids)} reference cases have no prediction: {missing}"
            if args.missing_as_empty:
                warnings.append(text + " (scored as empty predictions, flagged missing_prediction)")
            else:
                problems.append(text)
        extra = sorted(set(files) - ids)
        if extra:
            warnings.append(
                f"{folder} ({name}): {len(extra)} file(s) match no reference case and are ignored: "
                f"{', '.join(p.name for c in extra for p in files[c])}"
            )
    if problems:
        hint = "" if args.missing_as_empty else " (--missing-as-empty scores missing cases as empty predictions)"
        raise CompareError("bad input:\n  - " + "\n  - ".join(problems) + hint)
    return warnings


def build_config(args, models: dict[str, Path]) -> dict:
    """The pipeline config of the run (absolute paths, so it runs from any working directory)."""
    out = args.out.expanduser().resolve()
    dataset: dict[str, Any] = {
        "source": "references",
        "modality": "reference masks",
        "path": str(args.reference.expanduser().resolve()),
        "split": {"all_test": True},
        "preprocessing": {"normalization": "minmax", "resize": None},
        "evaluation": {"contour_tolerance_mm": float(args.tolerance_mm), "lesion_dilation_mm": float(args.dilation_mm)},
    }
    if args.images:
        dataset["images"] = str(args.images.expanduser().resolve())
    if args.spacing:
        dataset["spacing"] = [float(s) for s in args.spacing]
    labels = {k: list(v) for k, v in (("lesion", args.lesion_labels), ("ignore", args.ignore_labels)) if v}
    if labels:
        dataset["labels"] = labels
    post: dict[str, Any] = {"min_component_voxels": int(args.min_component_voxels)}
    if args.threshold is not None:
        post["threshold"] = float(args.threshold)
    return {
        "results": str(out),
        "figures": str(out / "figures"),
        "device": "cpu",
        "seeds": [0],
        "datasets": {DATASET: dataset},
        "models": {},
        "external_models": {name: str(path) for name, path in sorted(models.items())},
        "training": {},
        "postprocessing": post,
        "evaluation": {
            "distance_penalty_mm": args.penalty_mm,
            "probability_maps": args.threshold is not None,
            "missing_predictions": "empty" if args.missing_as_empty else "error",
        },
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


def run(args) -> int:
    models = parse_predictions(args.predictions)
    check_settings(args)
    root = repository()
    for warning in check_inputs(args, models):
        log.warning(warning)
    out = args.out.expanduser().resolve()
    config = build_config(args, models)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.yaml"
    with atomic_path(config_path, suffix=".yaml") as tmp:
        tmp.write_text(
            "# Written by `lesionbench compare`; rerun with: snakemake --configfile "
            + str(config_path)
            + "\n"
            + yaml.safe_dump(config, sort_keys=False)
        )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(root / "src")] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        ),
    )
    cmd = snakemake_command(root, config_path, out, args.cores, args.profile)
    log.info("running %s", " ".join(cmd))
    # one Snakemake call runs the study and then writes the report (a second call would rebuild the DAG)
    report = out / "report.html"
    proc = subprocess.run(cmd + ["--report", str(report), "--report-after-run"], env=env)
    if proc.returncode != 0:
        raise CompareError(
            f"the run failed (Snakemake exit {proc.returncode}; the failing rule's log is shown "
            f"above, all logs are in {out / 'logs'}; with every rule done, it was the HTML report); fix the "
            f"input and rerun the same command: finished steps are kept"
        )
    log.info("done: %s (summary.json, metrics/<model>/, study tables, figures/, report.html)", out)
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
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except (CompareError, PredictionError, SourceError, OSError) as exc:
        print(f"lesionbench compare: error: {exc}", file=sys.stderr)
        return 1
