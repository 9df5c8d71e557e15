"""WMH Segmentation Challenge 2017 (white matter hyperintensities), from DataverseNL doi:10.34894/AECRSD.

The data set is open (CC BY-NC 4.0). Its Dataverse metadata lists every file with its folder
(``directoryLabel``), numeric id, size and MD5; files are served by id. Acquisition, under the configured
``path``:

1. the metadata JSON is fetched once and cached as ``path/dataverse_metadata.json`` (a user may place it
   there by hand on a machine without internet);
2. only the files the study reads are fetched - per case ``wmh.nii.gz`` (labels) and ``pre/FLAIR.nii.gz``,
   plus ``pre/T1.nii.gz`` when ``download.modalities`` includes ``T1`` - into the same layout as on the
   server, ``{training,test}/<site>[/<scanner>]/<id>/...``, each checked against its size and MD5 (a file
   already present with the right MD5 is not fetched again);
3. without metadata (``download.enabled: false`` and no cached JSON) the files placed by the user in that
   layout are used as they are, with a warning that their MD5s could not be checked.

Official split: ``training`` (60 cases) -> train, ``test`` (110 cases, labels released) -> test.
Labels: 1 = white matter hyperintensity (the lesion), 2 = other pathology (the ignore mask, excluded from
every metric). Spacing comes from the NIfTI header (about 1 x 1 x 3 mm). Case ids join the folder names,
made filesystem-safe: ``test/Amsterdam/Philips_VU .PETMR_01./100`` -> ``test_Amsterdam_Philips_VU_PETMR_01_100``.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path, PurePosixPath

import pandas as pd

from .. import download
from . import RawCase, SourceError, SourceMissingError
from .lits import read_nifti_case

log = logging.getLogger(__name__)

DOI = "doi:10.34894/AECRSD"
LANDING_PAGE = "https://doi.org/10.34894/AECRSD"
METADATA_URL = "https://dataverse.nl/api/datasets/:persistentId/?persistentId=doi:10.34894/AECRSD"
FILE_URL = "https://dataverse.nl/api/access/datafile/{id}"
METADATA_CACHE = "dataverse_metadata.json"
LICENSE = "CC BY-NC 4.0"

LABELS = {"lesion": [1], "ignore": [2]}
MAX_LABEL = 2
SPLITS = {"training": "train", "test": "test"}
LABEL_FILE = "wmh.nii.gz"
MODALITY_FILES = {"FLAIR": "FLAIR.nii.gz", "T1": "T1.nii.gz"}  # inside <case>/pre/
PRE = "pre"


def case_id_of(case_dir: str) -> str:
    """Filesystem-safe id from a case folder: every run of characters other than letters, digits and '-'
    becomes one '_' (``training/Amsterdam/GE3T/100`` -> ``training_Amsterdam_GE3T_100``)."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", case_dir).strip("_")


def _options(ds_cfg: dict) -> dict:
    dl = dict(ds_cfg.get("download") or {})
    modalities = list(dl.get("modalities", ["FLAIR"]))
    unknown = sorted(set(modalities) - set(MODALITY_FILES))
    if unknown or not modalities or modalities[0] != "FLAIR":
        raise SourceError(
            f"download.modalities must start with FLAIR and use only {sorted(MODALITY_FILES)}, got {modalities}"
        )
    splits = list(dl.get("splits", list(SPLITS)))
    bad = sorted(set(splits) - set(SPLITS))
    if bad or not splits:
        raise SourceError(f"download.splits must be a non-empty subset of {list(SPLITS)}, got {splits}")
    return {
        "enabled": bool(dl.get("enabled", True)),
        "modalities": modalities,
        "splits": splits,
        "metadata_url": dl.get("metadata_url", METADATA_URL),
        "file_url": dl.get("file_url", FILE_URL),
        "retries": int(dl.get("retries", 3)),
        "timeout": float(dl.get("timeout", 60)),
    }


def _missing_message(name: str, root: Path, opts: dict, cause: str = "") -> str:
    because = f" ({cause})" if cause else ""
    extra = " and pre/T1.nii.gz" if "T1" in opts["modalities"] else ""
    return (
        f"data set {name!r} (WMH 2017): files not found under {root}{because}. They are downloaded "
        f"automatically when datasets.{name}.download.enabled is true and {opts['metadata_url']} can be "
        f"reached. By hand: get the data set from {LANDING_PAGE} (DataverseNL, {LICENSE}); put under "
        f"{root} the folders {', '.join(opts['splits'])} in the server's layout "
        f"<split>/<site>[/<scanner>]/<id>/ with wmh.nii.gz and pre/FLAIR.nii.gz{extra} per case (the "
        f"60 training cases are about 0.6 GB); save the metadata JSON from {opts['metadata_url']} as "
        f"{root / METADATA_CACHE} so every file is checked against its size and MD5."
    )


# -- metadata ----------------------------------------------------------------------------------------


def parse_metadata(meta: dict, where: str | Path) -> list[dict]:
    """The files of a Dataverse dataset JSON: ``path`` (folder/filename), ``id``, ``size``, ``md5``."""
    try:
        files = meta["data"]["latestVersion"]["files"]
    except (KeyError, TypeError) as exc:
        raise SourceError(f"{where}: not a Dataverse dataset JSON (no data.latestVersion.files)") from exc
    entries = []
    for i, f in enumerate(files):
        try:
            df = f["dataFile"]
            filename = df.get("filename") or f["label"]
            folder = f.get("directoryLabel") or ""
            file_id = int(df["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"{where}: file entry {i} lacks dataFile.id or filename ({exc})") from exc
        md5 = df.get("md5")
        checksum = df.get("checksum") or {}
        if not md5 and str(checksum.get("type", "")).upper() == "MD5":
            md5 = checksum.get("value")
        rel = f"{folder}/{filename}" if folder else filename
        path = download.safe_member_path(rel, where, what="file")
        size = df.get("filesize")
        entries.append({"path": path, "id": file_id, "size": None if size is None else int(size), "md5": md5})
    return entries


def select_cases(entries: list[dict], modalities: list[str], splits: list[str], where: str | Path) -> dict:
    """Group the needed files by case folder: {case_dir: {"label": entry, "FLAIR": entry, ...}}."""
    wanted = {MODALITY_FILES[m]: m for m in modalities}
    cases: dict[str, dict] = {}
    for e in entries:
        path: PurePosixPath = e["path"]
        if not path.parts or path.parts[0] not in splits:
            continue
        if path.name == LABEL_FILE:
            case_dir, key = path.parent, "label"
        elif path.parent.name == PRE and path.name in wanted:
            case_dir, key = path.parent.parent, wanted[path.name]
        else:
            continue
        if len(case_dir.parts) < 3:  # <split>/<site>[/<scanner>]/<id>
            raise SourceError(f"{where}: {path} is not inside a <split>/<site>[/<scanner>]/<id>/ case folder")
        slot = cases.setdefault(str(case_dir), {})
        if key in slot:
            raise SourceError(f"{where}: {path} is listed twice")
        slot[key] = e
    for folder, slot in sorted(cases.items()):
        missing = [k for k in ["label", *modalities] if k not in slot]
        if missing:
            names = [LABEL_FILE if k == "label" else f"{PRE}/{MODALITY_FILES[k]}" for k in missing]
            raise SourceError(f"{where}: case folder {folder!r} has no {', '.join(names)}")
    return cases


def scan_local(root: Path, modalities: list[str], splits: list[str]) -> dict:
    """Case folders placed by hand (no metadata): ``{case_dir: {"label": {"path": ...}, ...}}``."""
    cases = {}
    for split in splits:
        base = root / split
        if not base.is_dir():
            continue
        for label in sorted(base.rglob(LABEL_FILE)):
            case_dir = label.parent.relative_to(root)
            if download.is_junk(str(case_dir)):
                continue
            slot = {"label": {"path": PurePosixPath(case_dir.as_posix(), LABEL_FILE)}}
            for m in modalities:
                p = label.parent / PRE / MODALITY_FILES[m]
                if not p.is_file():
                    raise SourceError(f"{p}: missing (case folder {case_dir})")
                slot[m] = {"path": PurePosixPath(case_dir.as_posix(), PRE, MODALITY_FILES[m])}
            cases[case_dir.as_posix()] = slot
    return cases


# -- acquisition -------------------------------------------------------------------------------------


def _metadata(name: str, root: Path, opts: dict) -> dict | None:
    cache = root / METADATA_CACHE
    if cache.is_file() or opts["enabled"]:
        try:
            return download.fetch_json(opts["metadata_url"], cache, retries=opts["retries"], timeout=opts["timeout"])
        except download.DownloadError as exc:
            if not exc.unreachable:
                raise
            if root.is_dir() and scan_local(root, opts["modalities"], opts["splits"]):
                log.warning("%s: metadata unreachable (%s); using the files placed under %s", name, exc, root)
                return None
            raise SourceMissingError(_missing_message(name, root, opts, str(exc))) from exc
    return None


def _fetch_files(name: str, root: Path, opts: dict, cases: dict) -> None:
    needed = [e for slot in cases.values() for e in slot.values()]
    missing = []
    for i, e in enumerate(sorted(needed, key=lambda e: str(e["path"]))):
        target = root / e["path"]
        if opts["enabled"]:
            try:
                download.fetch(
                    opts["file_url"].format(id=e["id"]),
                    target,
                    e["md5"],
                    size=e["size"],
                    retries=opts["retries"],
                    timeout=opts["timeout"],
                )
            except download.DownloadError as exc:
                if exc.unreachable:
                    raise SourceMissingError(_missing_message(name, root, opts, str(exc))) from exc
                raise
        elif target.is_file():
            download.check_file(target, e["md5"], e["size"])
        else:
            missing.append(str(e["path"]))
        if (i + 1) % 50 == 0:
            log.info("%s: %d of %d files present and verified", name, i + 1, len(needed))
    if missing:
        raise SourceMissingError(
            _missing_message(
                name,
                root,
                opts,
                f"{len(missing)} of {len(needed)} files absent, e.g. {missing[:3]}, and "
                f"datasets.{name}.download.enabled is false",
            )
        )


def acquire(name: str, ds_cfg: dict, raw_dir: Path) -> pd.DataFrame:
    root = Path(ds_cfg["path"]).expanduser().resolve()
    opts = _options(ds_cfg)
    meta = _metadata(name, root, opts)
    if meta is not None:
        cases = select_cases(
            parse_metadata(meta, root / METADATA_CACHE), opts["modalities"], opts["splits"], root / METADATA_CACHE
        )
        if not cases:
            raise SourceError(
                f"{root / METADATA_CACHE}: lists no {LABEL_FILE} case folders under "
                f"{opts['splits']}; is this the WMH 2017 data set ({DOI})?"
            )
        _fetch_files(name, root, opts, cases)
        verified = True
    else:
        cases = scan_local(root, opts["modalities"], opts["splits"]) if root.is_dir() else {}
        if not cases:
            raise SourceMissingError(
                _missing_message(
                    name, root, opts, f"datasets.{name}.download.enabled is false and no case folders found"
                )
            )
        warnings.warn(
            f"{name}: no Dataverse metadata at {root / METADATA_CACHE}; the files' MD5s are not checked", stacklevel=2
        )
        verified = False
    rows: list[dict] = []
    seen: dict[str, str] = {}
    for case_dir, slot in sorted(cases.items()):
        case_id = case_id_of(case_dir)
        if case_id in seen:
            raise SourceError(
                f"{root}: case folders {seen[case_id]!r} and {case_dir!r} give the same case id {case_id!r}"
            )
        seen[case_id] = case_dir
        parts = PurePosixPath(case_dir).parts
        rows.append(
            {
                "case_id": case_id,
                "image": str(root / slot["FLAIR"]["path"]),
                "mask": str(root / slot["label"]["path"]),
                "official_split": SPLITS[parts[0]],
                "t1": str(root / slot["T1"]["path"]) if "T1" in slot else "",
                "site": parts[1],
                "scanner": "/".join(parts[2:-1]),
            }
        )
    manifest = pd.DataFrame(rows)
    _write_provenance(raw_dir, name, root, opts, cases, verified)
    log.info("%s: %d WMH cases (%s)", name, len(manifest), manifest["official_split"].value_counts().to_dict())
    return manifest


def _write_provenance(raw_dir: Path, name: str, root: Path, opts: dict, cases: dict, verified: bool) -> None:
    from ...io.atomic import write_json

    files = {
        str(e["path"]): {"md5": e.get("md5"), "bytes": e.get("size"), "id": e.get("id")}
        for slot in cases.values()
        for e in slot.values()
    }
    write_json(
        {
            "dataset": name,
            "source": "wmh",
            "doi": DOI,
            "license": LICENSE,
            "root": str(root),
            "metadata_url": opts["metadata_url"],
            "md5_verified": verified,
            "files": files,
        },
        Path(raw_dir) / "provenance.json",
    )


def read_case(row: dict, ds_cfg: dict, raw_dir: Path) -> RawCase:
    labels = ds_cfg.get("labels") or {}
    lesion = labels.get("lesion", LABELS["lesion"])
    ignore = labels.get("ignore", LABELS["ignore"])
    images = [Path(row["image"])] + ([Path(row["t1"])] if str(row.get("t1") or "") else [])
    images = [p if p.is_absolute() else Path(raw_dir) / p for p in images]
    label = Path(row["mask"])
    label = label if label.is_absolute() else Path(raw_dir) / label
    return read_nifti_case(row["case_id"], images, label, lesion, ignore, MAX_LABEL)
