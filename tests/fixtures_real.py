"""Small fixture copies of the three public data sets, in their real layouts, and a local file server.

Everything is built in code, in a temporary folder, in well under a second:

- ``serve``: an HTTP server on 127.0.0.1 (random port) answering fixed routes, counting hits, and able to
  cut a transfer short (a truncated download);
- ``build_wmh``: a DataverseNL store - the dataset metadata JSON (``data.latestVersion.files[]`` with
  ``directoryLabel``, ``dataFile.id``, ``filename``, ``filesize``, ``md5``) and the files it lists, served
  by id, including the ``Amsterdam/Philips_VU .PETMR_01.`` folder name and files the study does not use;
- ``build_msd_tar``: ``Task03_Liver.tar`` with ``dataset.json``, ``imagesTr``, ``labelsTr``, ``imagesTs``
  and macOS ``._*`` side files; ``build_lits_original``: ``volume-N.nii`` / ``segmentation-N.nii``;
- ``build_idrid``: the ``A. Segmentation`` tree (optionally zipped, with ``__MACOSX`` junk), masks as
  1-bit palette TIFFs whose index 1 is red, one RGBA TIFF with alpha 255 everywhere, missing lesion types,
  and optic-disc masks that must not count as lesion.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

# -- generic ------------------------------------------------------------------------------------------


def md5(path_or_bytes) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return hashlib.md5(data).hexdigest()


def write_nifti(path: Path, data: np.ndarray, zooms=(1.0, 1.0, 1.0), affine=None, slope=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if affine is None:
        affine = np.diag(list(zooms) + [1.0])
        affine[:3, 3] = [-10.0, 5.0, 2.0]
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(zooms)
    if slope is not None:
        img.header.set_slope_inter(slope, 0.0)
    nib.save(img, str(path))
    return path


def files_under(folder: Path) -> list[str]:
    """Every file and folder below ``folder`` (hidden ones too), relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


class FileServer:
    def __init__(self, routes: dict[str, Path | bytes]):
        self.routes = dict(routes)
        self.truncate: set[str] = set()
        self.hits: list[str] = []
        self.url = ""


@contextlib.contextmanager
def serve(routes: dict[str, Path | bytes]):
    """Serve ``routes`` (URL path with query -> file or bytes) on 127.0.0.1; yields a FileServer whose
    ``url`` is the base address. Paths in ``server.truncate`` send half their bytes under the full
    Content-Length, then drop the connection."""
    state = FileServer(routes)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.hits.append(self.path)
            body = state.routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body if isinstance(body, bytes) else Path(body).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.path in state.truncate:
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
            else:
                self.wfile.write(data)

        def log_message(self, *args):
            pass

    old = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def closed_port_url() -> str:
    """A 127.0.0.1 address nothing listens on (connection refused at once)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- WMH (DataverseNL) -------------------------------------------------------------------------------

WMH_CASES = [
    "training/Utrecht/0",
    "training/Singapore/50",
    "training/Amsterdam/GE3T/100",
    "test/Utrecht/1",
    "test/Amsterdam/Philips_VU .PETMR_01./144",
]
WMH_ZOOMS = (0.96, 0.98, 3.0)
WMH_SHAPE = (12, 10, 5)
METADATA_PATH = "/api/datasets/:persistentId/?persistentId=doi:10.34894/AECRSD"


def wmh_volumes(index: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(index)
    flair = rng.normal(100, 10, WMH_SHAPE).astype(np.float32)
    t1 = rng.normal(300, 30, WMH_SHAPE).astype(np.float32)
    labels = np.zeros(WMH_SHAPE, np.float32 if index % 2 else np.uint8)  # both stored types occur
    labels[2:4, 3:5, 1] = 1
    labels[6, 6, 2:4] = 1
    labels[9:11, 1:3, 3] = 2
    return {
        "pre/FLAIR.nii.gz": flair,
        "pre/T1.nii.gz": t1,
        "orig/FLAIR.nii.gz": flair[::-1].copy(),
        "wmh.nii.gz": labels,
    }


def build_wmh(store: Path, cases=WMH_CASES) -> dict:
    """Write the files of ``cases`` under ``store`` and return ``{"metadata": dict, "routes": {...},
    "arrays": {case_dir: {file: array}}, "ids": {relative path: id}}``."""
    files, routes, arrays, ids = [], {}, {}, {}
    next_id = 3000
    for index, case_dir in enumerate(cases):
        arrays[case_dir] = wmh_volumes(index)
        for rel, data in arrays[case_dir].items():
            path = write_nifti(store / case_dir / rel, data, WMH_ZOOMS)
            folder = str(Path(case_dir, rel).parent.as_posix())
            next_id += 1
            ids[f"{case_dir}/{rel}"] = next_id
            routes[f"/api/access/datafile/{next_id}"] = path
            files.append(_dataverse_entry(next_id, folder, path))
    readme = store / "README.txt"
    readme.write_text("WMH Segmentation Challenge\n")
    files.append(_dataverse_entry(2999, None, readme))
    routes["/api/access/datafile/2999"] = readme
    metadata = {
        "status": "OK",
        "data": {
            "id": 1234,
            "identifier": "AECRSD",
            "protocol": "doi",
            "authority": "10.34894",
            "persistentUrl": "https://doi.org/10.34894/AECRSD",
            "latestVersion": {
                "versionState": "RELEASED",
                "versionNumber": 1,
                "license": {"name": "CC BY-NC 4.0"},
                "files": files,
            },
        },
    }
    routes[METADATA_PATH] = json.dumps(metadata).encode()
    return {"metadata": metadata, "routes": routes, "arrays": arrays, "ids": ids}


def _dataverse_entry(file_id: int, folder: str | None, path: Path) -> dict:
    data = path.read_bytes()
    entry = {
        "description": "",
        "label": path.name,
        "restricted": False,
        "version": 1,
        "datasetVersionId": 77,
        "dataFile": {
            "id": file_id,
            "persistentId": "",
            "filename": path.name,
            "contentType": "application/gzip",
            "filesize": len(data),
            "storageIdentifier": f"s3://dataverse-bucket:{file_id:x}",
            "rootDataFileId": -1,
            "md5": md5(data),
            "checksum": {"type": "MD5", "value": md5(data)},
            "creationDate": "2022-02-23",
        },
    }
    if folder is not None:
        entry["directoryLabel"] = folder
    return entry


def wmh_config(root: Path, url: str, **download) -> dict:
    return {
        "source": "wmh",
        "modality": "brain MRI",
        "path": str(root),
        "download": {
            "metadata_url": url + METADATA_PATH,
            "file_url": url + "/api/access/datafile/{id}",
            "retries": 0,
            **download,
        },
        "labels": {"lesion": [1], "ignore": [2]},
        "split": {},
        "preprocessing": {"normalization": "zscore", "resize": None},
        "evaluation": {"contour_tolerance_mm": 1.0, "lesion_dilation_mm": 3.0},
    }


# -- LiTS --------------------------------------------------------------------------------------------

LITS_ZOOMS = (0.7, 0.75, 2.5)
LITS_SHAPE = (16, 14, 6)


def lits_volumes(number: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(number)
    ct = rng.integers(-1000, 400, LITS_SHAPE).astype(np.int16)
    seg = np.zeros(LITS_SHAPE, np.uint8)
    seg[3:12, 3:11, 1:5] = 1
    seg[5:7, 5:8, 2:4] = 2
    seg[9, 9, 3] = 2
    return ct, seg


def build_msd_tar(path: Path, numbers=(0, 2, 5), junk: bool = True, test_numbers=(131,)) -> dict:
    """``Task03_Liver.tar`` in the MSD layout; returns {"md5", "arrays": {number: (ct, seg)}}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {n: lits_volumes(n) for n in numbers}
    meta = {
        "name": "Liver",
        "labels": {"0": "background", "1": "liver", "2": "cancer"},
        "numTraining": len(numbers),
        "numTest": len(test_numbers),
        "training": [
            {"image": f"./imagesTr/liver_{n}.nii.gz", "label": f"./labelsTr/liver_{n}.nii.gz"} for n in numbers
        ],
        "test": [f"./imagesTs/liver_{n}.nii.gz" for n in test_numbers],
    }
    with tarfile.open(path, "w") as tar:
        _add_bytes(tar, "Task03_Liver/dataset.json", json.dumps(meta).encode())
        for n, (ct, seg) in arrays.items():
            for folder, data in (("imagesTr", ct), ("labelsTr", seg)):
                if junk:  # AppleDouble side file, as in the real archive
                    _add_bytes(tar, f"Task03_Liver/{folder}/._liver_{n}.nii.gz", b"\x00\x05\x16\x07junk")
                _add_bytes(tar, f"Task03_Liver/{folder}/liver_{n}.nii.gz", _nifti_bytes(data, LITS_ZOOMS))
        for n in test_numbers:
            _add_bytes(tar, f"Task03_Liver/imagesTs/liver_{n}.nii.gz", _nifti_bytes(lits_volumes(n)[0], LITS_ZOOMS))
    return {"md5": md5(path), "arrays": arrays}


def _nifti_bytes(data: np.ndarray, zooms) -> bytes:
    img = nib.Nifti1Image(data, np.diag(list(zooms) + [1.0]))
    img.header.set_zooms(zooms)
    with io.BytesIO() as raw:
        import gzip

        file_map = nib.Nifti1Image.make_file_map({"image": raw})
        img.to_file_map(file_map)
        return gzip.compress(raw.getvalue(), compresslevel=1)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, kind=tarfile.REGTYPE, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def build_evil_tar(path: Path, member: str, kind=tarfile.REGTYPE, linkname: str = "") -> str:
    """A Task03_Liver.tar with one valid file and one hostile member; returns its MD5."""
    with tarfile.open(path, "w") as tar:
        _add_bytes(tar, "Task03_Liver/dataset.json", b"{}")
        _add_bytes(tar, member, b"evil", kind=kind, linkname=linkname)
    return md5(path)


def build_lits_original(root: Path, numbers=(0, 2), unlabelled=(131,)) -> dict:
    arrays = {}
    for n in numbers:
        ct, seg = lits_volumes(n)
        batch = "Training Batch 1" if n < 28 else "Training Batch 2"
        write_nifti(root / batch / f"volume-{n}.nii", ct, LITS_ZOOMS)
        write_nifti(root / batch / f"segmentation-{n}.nii", seg, LITS_ZOOMS)
        arrays[n] = (ct, seg)
    for n in unlabelled:
        write_nifti(root / "Testing Batch" / f"volume-{n}.nii", lits_volumes(n)[0], LITS_ZOOMS)
    return arrays


def lits_config(root: Path, url: str | None = None, md5_value: str | None = None, **download) -> dict:
    dl = {"retries": 0, **download}
    if url is not None:
        dl["url"] = url
    if md5_value is not None:
        dl["md5"] = md5_value
    return {
        "source": "lits",
        "modality": "abdominal CT",
        "path": str(root),
        "download": dl,
        "labels": {"lesion": [2]},
        "split": {},
        "preprocessing": {"normalization": "window", "window": [-100, 200], "resize": None},
        "evaluation": {"contour_tolerance_mm": 2.0, "lesion_dilation_mm": 3.0},
    }


# -- IDRiD -------------------------------------------------------------------------------------------

IDRID_SHAPE = (24, 36)  # (H, W); the real images are 2848 x 4288
IDRID_TRAIN = ("IDRiD_01", "IDRiD_02", "IDRiD_03")
IDRID_TEST = ("IDRiD_55", "IDRiD_56")
KIND_FOLDERS = {"MA": "1. Microaneurysms", "HE": "2. Haemorrhages", "EX": "3. Hard Exudates", "SE": "4. Soft Exudates"}


def write_palette_tiff_1bit(path: Path, mask: np.ndarray, colours=((0, 0, 0), (255, 0, 0))) -> Path:
    """An uncompressed 1-bit palette TIFF (Photometric = palette, BitsPerSample = 1) like IDRiD's masks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = mask.shape
    data = np.packbits(mask.astype(bool), axis=1).tobytes()
    colormap = [c[i] * 257 for i in range(3) for c in colours]  # all reds, all greens, all blues (16 bit)
    cmap_bytes = struct.pack(f"<{len(colormap)}H", *colormap)
    data_offset = 8
    cmap_offset = data_offset + len(data)
    ifd_offset = cmap_offset + len(cmap_bytes)
    ifd_offset += ifd_offset % 2
    tags = [
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, 1, 1),
        (259, 3, 1, 1),
        (262, 3, 1, 3),
        (273, 4, 1, data_offset),
        (277, 3, 1, 1),
        (278, 4, 1, h),
        (279, 4, 1, len(data)),
        (320, 3, len(colormap), cmap_offset),
    ]
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset))
    out += data + cmap_bytes
    out += b"\x00" * (ifd_offset - len(out))
    out += struct.pack("<H", len(tags))
    for tag, typ, count, value in tags:
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    path.write_bytes(bytes(out))
    return path


def idrid_masks(case: str) -> dict[str, np.ndarray]:
    """Lesion masks of a fixture image; a missing key means the real data set has no file for it."""
    n = int(case.split("_")[1])
    h, w = IDRID_SHAPE
    ma = np.zeros((h, w), bool)
    ma[n % 7 + 2, 4] = True
    ma[n % 7 + 2, 30] = True
    out = {"MA": ma}
    if case != "IDRiD_02":  # no haemorrhage file for this image
        he = np.zeros((h, w), bool)
        he[10:13, 10 + n % 5 : 15 + n % 5] = True
        out["HE"] = he
    ex = np.zeros((h, w), bool)
    ex[18:21, 20:23] = True
    out["EX"] = ex
    if case in ("IDRiD_01", "IDRiD_55"):  # soft exudates only for some images
        se = np.zeros((h, w), bool)
        se[3:6, 12:16] = True
        out["SE"] = se
    return out


def idrid_image(case: str) -> np.ndarray:
    rng = np.random.default_rng(int(case.split("_")[1]))
    return rng.integers(0, 255, IDRID_SHAPE + (3,), dtype=np.uint8)


def build_idrid(root: Path, as_zip: bool = False, junk: bool = True) -> dict:
    """The ``A. Segmentation`` tree under ``root`` (or ``root/A. Segmentation.zip``).

    Returns {"images": {case: decoded RGB array}, "masks": {case: expected union}, "zip": path or None}.
    IDRiD_01's EX mask is RGBA (alpha 255 everywhere); the others are 1-bit palette TIFFs.
    """
    base = root / "build" if as_zip else root
    seg = base / "A. Segmentation"
    images, unions = {}, {}
    for split_dir, cases in (("a. Training Set", IDRID_TRAIN), ("b. Testing Set", IDRID_TEST)):
        for case in cases:
            jpg = seg / "1. Original Images" / split_dir / f"{case}.jpg"
            jpg.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(idrid_image(case)).save(jpg, quality=95)
            with Image.open(jpg) as im:
                images[case] = np.asarray(im.convert("RGB"))
            masks = idrid_masks(case)
            union = np.zeros(IDRID_SHAPE, bool)
            for kind, m in masks.items():
                target = (
                    seg / "2. All Segmentation Groundtruths" / split_dir / KIND_FOLDERS[kind] / f"{case}_{kind}.tif"
                )
                if case == "IDRiD_01" and kind == "EX":
                    rgba = np.zeros(IDRID_SHAPE + (4,), np.uint8)
                    rgba[..., 3] = 255
                    rgba[m, 0] = 255
                    target.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(rgba, "RGBA").save(target)
                else:
                    write_palette_tiff_1bit(target, m)
                union |= m
            unions[case] = union
            od = np.zeros(IDRID_SHAPE, bool)
            od[8:16, 24:32] = True  # optic disc: never lesion
            write_palette_tiff_1bit(
                seg / "2. All Segmentation Groundtruths" / split_dir / "5. Optic Disc" / f"{case}_OD.tif", od
            )
        for folder in KIND_FOLDERS.values():  # every type folder exists even if a split has no file
            (seg / "2. All Segmentation Groundtruths" / split_dir / folder).mkdir(parents=True, exist_ok=True)
    if junk:
        (seg / "1. Original Images" / "a. Training Set" / "._IDRiD_01.jpg").write_bytes(b"\x00\x05\x16\x07")
    archive = None
    if as_zip:
        archive = root / "A. Segmentation.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(seg.rglob("*")):
                rel = p.relative_to(base).as_posix()
                if p.is_dir():
                    zf.writestr(rel + "/", b"")
                else:
                    zf.write(p, rel)
            if junk:
                zf.writestr("__MACOSX/A. Segmentation/._1. Original Images", b"\x00\x05\x16\x07")
        import shutil

        shutil.rmtree(base)
    return {"images": images, "masks": unions, "zip": archive}


def idrid_config(root: Path, **extra) -> dict:
    cfg = {
        "source": "idrid",
        "modality": "fundus",
        "path": str(root),
        "split": {},
        "preprocessing": {"normalization": "zscore", "resize": None},
        "evaluation": {"contour_tolerance_mm": 4.0, "lesion_dilation_mm": 8.0},
    }
    cfg.update(extra)
    return cfg
