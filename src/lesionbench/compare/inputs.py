"""The inputs of ``lesionbench compare``: data sets (reference folders), prediction folders per data set and model,
and the checks that can run before the workflow starts.

Forms (docs in README "Evaluate your own predictions"):
- one data set: ``--reference DIR`` (named after the folder, or ``--name``) or ``--reference NAME=DIR``, with
  ``--predictions MODEL=DIR``;
- several: ``--reference NAME=DIR`` per data set, with ``--predictions NAME/MODEL=DIR`` per data set and
  model, or ``--predictions MODEL=DIR`` where DIR holds a ``{dataset}`` placeholder.
Every model needs predictions for every data set (the study pools data sets over one model set).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from ..data.sources import SourceError
from ..data.sources.references import LABEL_FOLDERS, Layout, discover, image_files
from ..io.images import is_nifti
from ..io.predictions import prediction_files

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
RESERVED_MODELS = {"unet", "resunet", "attention_unet", "hybrid_transformer"}  # trained model names (schema)
# Column names of the pairwise tables: a model of that name would read like a column.
PAIR_COLUMNS = {"pair_first", "pair_second"}
RESERVED_DATASETS = {"pooled"}  # the data set name of all data sets pooled (stats.tables.POOLED)
# Folder names that say what a folder holds, not which data set it is: the parent names the data set.
GENERIC_FOLDERS = {*LABEL_FOLDERS, "masks", "labels", "references", "reference", "gt", "ground_truth"}


class CompareError(ValueError):
    """Bad input of ``lesionbench compare``; the message names the folder, case or file."""


@dataclass
class DatasetInput:
    """One data set of a comparison: its reference folder, images and one prediction folder per model."""

    name: str
    reference: Path
    images: Path | None = None
    predictions: dict[str, Path] = field(default_factory=dict)


def folder_name(path: Path) -> str:
    """A data set name from a reference folder: the folder's name (its parent's for labelsTs, masks ...),
    reduced to letters, digits, _ and -."""
    path = path.expanduser().resolve()
    name = path.parent.name if path.name in GENERIC_FOLDERS else path.name
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")
    return name if name and name not in RESERVED_DATASETS else "dataset"


def _named(item: str, flag: str) -> tuple[str | None, str]:
    """(name or None, value) of ``NAME=VALUE`` or ``VALUE``."""
    name, sep, value = item.partition("=")
    if not sep:
        return None, item
    if not name or not value:
        raise CompareError(f"{flag} {item!r}: expected NAME=DIR (or DIR)")
    return name, value


def _check_name(name: str, item: str, flag: str, reserved: set[str], what: str) -> None:
    if not NAME.match(name) or name in reserved:
        raise CompareError(
            f"{flag} {item!r}: the {what} name must be letters, digits, _ or - (starting with a letter or digit) "
            f"and not one of {sorted(reserved)}"
        )


def _folder(text: str, item: str, flag: str) -> Path:
    path = Path(text).expanduser().resolve()
    if not path.is_dir():
        raise CompareError(f"{flag} {item}: folder not found")
    return path


def parse_datasets(
    references: list[str], predictions: list[str], images: list[str] | None = None, name: str | None = None
) -> dict[str, DatasetInput]:
    """The data sets of the command line, each with its prediction folders; raises CompareError naming the
    argument on any inconsistency."""
    datasets: dict[str, DatasetInput] = {}
    for item in references:
        given, text = _named(item, "--reference")
        if given is None and len(references) > 1:
            raise CompareError(f"--reference {item!r}: with several data sets name each: --reference NAME=DIR")
        ds_name = given or name or folder_name(Path(text))
        _check_name(ds_name, item, "--reference", RESERVED_DATASETS, "data set")
        if ds_name in datasets:
            raise CompareError(f"--reference: data set name {ds_name!r} is given twice")
        datasets[ds_name] = DatasetInput(ds_name, Path(text).expanduser().resolve())
    if name and len(references) > 1:
        raise CompareError("--name names the one data set of --reference DIR; with several use --reference NAME=DIR")
    for item in images or []:
        given, text = _named(item, "--images")
        if given is None and len(datasets) > 1:
            raise CompareError(f"--images {item!r}: with several data sets name them: --images NAME=DIR")
        target = given or next(iter(datasets))
        if target not in datasets:
            raise CompareError(f"--images {item!r}: no data set {target!r} (data sets: {sorted(datasets)})")
        datasets[target].images = Path(text).expanduser().resolve()
    for item in predictions:
        left, sep, text = item.partition("=")
        if not sep or not left or not text:
            raise CompareError(f"--predictions {item!r}: expected MODEL=DIR or DATASET/MODEL=DIR")
        ds_name, slash, model = left.rpartition("/")
        _check_name(model, item, "--predictions", RESERVED_MODELS | PAIR_COLUMNS, "model")
        if slash:
            if ds_name not in datasets:
                raise CompareError(f"--predictions {item!r}: no data set {ds_name!r} (data sets: {sorted(datasets)})")
            targets = {ds_name: text}
        elif len(datasets) == 1:
            targets = {next(iter(datasets)): text}
        elif "{dataset}" in text:
            targets = {d: text.replace("{dataset}", d) for d in datasets}
        else:
            raise CompareError(
                f"--predictions {item!r}: with several data sets say which: --predictions DATASET/{model}=DIR, "
                f"or put {{dataset}} in DIR"
            )
        for ds, folder in targets.items():
            if model in datasets[ds].predictions:
                raise CompareError(f"--predictions: model {model!r} of data set {ds!r} is given twice")
            datasets[ds].predictions[model] = _folder(folder, item, "--predictions")
    models = sorted({m for d in datasets.values() for m in d.predictions})
    if not models:
        raise CompareError("--predictions: no prediction folder given")
    for d in datasets.values():
        missing = [m for m in models if m not in d.predictions]
        if missing:
            raise CompareError(
                f"data set {d.name!r} has no predictions of model(s) {missing}: every model needs a folder for "
                f"every data set (--predictions {d.name}/{missing[0]}=DIR)"
            )
    return datasets


def check_folders(ds: DatasetInput, missing_as_empty: bool) -> tuple[Layout, list[str]]:
    """Layout of the reference folder and the case names of every prediction folder (missing, doubled and
    extra files); returns (layout, warnings), raises CompareError on bad input."""
    try:
        layout = discover(ds.reference, ds.images)
        if layout.images_dir:
            image_files(layout.images_dir, sorted(layout.masks))
    except (SourceError, FileNotFoundError) as exc:
        raise CompareError(str(exc)) from exc
    ids = set(layout.masks)
    problems, warnings = [], []
    for name, folder in ds.predictions.items():
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
            if missing_as_empty:
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
        hint = "" if missing_as_empty else " (--missing-as-empty scores missing cases as empty predictions)"
        raise CompareError("bad input:\n  - " + "\n  - ".join(problems) + hint)
    return layout, warnings


@dataclass
class FileInfo:
    shape: tuple[int, ...]
    floating: bool


def file_info(path: Path) -> FileInfo:
    """Shape (spatial axes, file order) and whether values are floating point, from the header alone where the
    format has one (NIfTI, PNG/TIFF)."""
    try:
        if is_nifti(path):
            import nibabel as nib

            header = cast("SpatialImage", nib.load(str(path))).header
            return FileInfo(tuple(int(n) for n in header.get_data_shape()), header.get_data_dtype().kind == "f")
        from PIL import Image

        # colour channels are the reader's business (palette, grey RGB); frames make a stack, not a 2D mask
        with Image.open(path) as im:
            frames = getattr(im, "n_frames", 1)
            return FileInfo((im.height, im.width) + ((frames,) if frames > 1 else ()), im.mode == "F")
    except Exception as exc:  # nibabel and PIL raise many types for corrupt files
        raise CompareError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc


def _spatial(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape without trailing singleton axes beyond two (NIfTI (x, y, 1) is a 2D image)."""
    dims = list(shape)
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    return tuple(dims)


def _read_values(path: Path) -> np.ndarray:
    if is_nifti(path):
        import nibabel as nib

        return np.asanyarray(cast("SpatialImage", nib.load(str(path))).dataobj)
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def precheck_case(case_id: str, reference: Path, predictions: dict[str, Path], probability_maps: bool) -> None:
    """What can be checked per case before the workflow runs, from headers (and the values of floating-point
    predictions only, which are the ones that can hold NaN or probabilities): dimensionality (2D or 3D),
    prediction shape equal to the reference shape, no NaN/inf, and without ``--threshold`` no fractional
    values. Label values of integer files are checked by the workflow's data and evaluation steps."""
    ref = file_info(reference)
    ref_shape = _spatial(ref.shape)
    if len(ref_shape) not in (2, 3):
        raise CompareError(
            f"case {case_id!r}: reference {reference}: {len(ref.shape)}D image of shape {ref.shape}; a reference "
            f"mask must be 2D or 3D"
        )
    for model, path in predictions.items():
        info = file_info(path)
        shape = _spatial(info.shape)
        if len(shape) not in (2, 3):
            raise CompareError(
                f"case {case_id!r} ({model}): {path}: {len(info.shape)}D prediction of shape {info.shape}; a "
                f"prediction must be a 2D or 3D mask like its reference {ref_shape} (one channel, no class axis)"
            )
        if shape != ref_shape:
            raise CompareError(
                f"case {case_id!r} ({model}): {path}: shape {shape} does not match the reference {reference} "
                f"{ref_shape}"
            )
        if info.floating:
            values = _read_values(path)
            bad = ~np.isfinite(values)
            if bad.any():
                raise CompareError(
                    f"case {case_id!r} ({model}): {path}: {int(bad.sum())} NaN or infinite value(s); a prediction "
                    f"must hold finite values"
                )
            fractional = values[values != np.round(values)]
            if not probability_maps and fractional.size:
                raise CompareError(
                    f"case {case_id!r} ({model}): {path}: fractional values (e.g. {float(fractional[0]):g}), a "
                    f"probability map; --threshold X reads it as foreground = value >= X"
                )


def precheck(ds: DatasetInput, layout: Layout, probability_maps: bool) -> int:
    """``precheck_case`` over every case with a prediction file; returns the number of files checked."""
    files = {m: prediction_files(f) for m, f in ds.predictions.items()}
    n = 0
    for cid, reference in sorted(layout.masks.items()):
        preds = {m: found[cid][0] for m, found in files.items() if found.get(cid)}
        precheck_case(cid, reference, preds, probability_maps)
        n += 1 + len(preds)
    return n
