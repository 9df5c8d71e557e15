"""Bad source inputs that used to pass silently: each now stops with a message naming the file, the value
found and what to do, and leaves what an earlier run wrote untouched (docs/reliability.md)."""

import hashlib
import logging
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lesionbench.data.prepare import prepare_dataset
from lesionbench.data.sources import SourceError, folder
from lesionbench.data.sources.lits import read_volume
from lesionbench.io.images import ImageReadError, read_label_raster, read_nifti, read_raster, write_png

CASES = ["c0", "c1", "c2", "c3"]


def make_folder_dataset(root: Path, labels=(1,)) -> Path:
    """Four 16x16 grey cases, each mask a 4x4 square of every value in ``labels``."""
    for i, case_id in enumerate(CASES):
        image = np.full((16, 16), 40 + 10 * i, np.uint8)
        mask = np.zeros((16, 16), np.uint8)
        for k, value in enumerate(labels):
            mask[2 + 5 * k : 6 + 5 * k, 2:6] = value
        write_png(image, root / "images" / f"{case_id}.png")
        write_png(mask, root / "masks" / f"{case_id}.png")
    return root


def snapshot(folder_path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder_path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder_path.rglob("*"))
        if p.is_file()
    }


def prepare(root: Path, out: Path, ds_cfg: dict):
    manifest = folder.acquire("mine", {"path": str(root)}, out / "raw")
    split = pd.DataFrame({"case_id": CASES, "split": ["train", "val", "test", "test"]})
    return prepare_dataset(
        "mine",
        {"source": "folder", "path": str(root), **ds_cfg},
        manifest,
        split,
        out / "raw",
        out / "prepared",
        out / "cases.csv",
    )


@pytest.fixture
def prepared_once(tmp_path):
    """A folder data set prepared once (the earlier run), and a snapshot of what that run wrote."""
    root = make_folder_dataset(tmp_path / "mine")
    out = tmp_path / "results"
    prepare(root, out, {"labels": {"lesion": [1]}})
    return root, out, snapshot(out)


def test_folder_mask_with_an_unlisted_label_value(prepared_once):
    root, out, before = prepared_once
    mask = np.asarray(Image.open(root / "masks" / "c2.png")).copy()
    mask[10:12, 10:12] = 7  # 0/1/7 with lesion: [1]: 7 used to become background silently
    write_png(mask, root / "masks" / "c2.png")
    with pytest.raises(SourceError) as info:
        prepare(root, out, {"labels": {"lesion": [1]}})
    msg = str(info.value)
    assert f"{root / 'masks' / 'c2.png'}: mask holds label values [7]" in msg
    assert "labels.lesion [1]" in msg and "values found: [0, 1, 7]" in msg
    assert "add each to labels.lesion or labels.ignore" in msg
    assert snapshot(out) == before
    # listing it (as lesion or as ignore) is the fix
    prepare(root, out, {"labels": {"lesion": [1], "ignore": [7]}})
    from lesionbench.io.cases import load_case

    case = load_case(out / "prepared", "c2")
    assert case.mask.sum() == 16 and case.ignore.sum() == 4


def test_same_label_in_lesion_and_ignore(prepared_once):
    root, out, before = prepared_once
    with pytest.raises(SourceError) as info:
        prepare(root, out, {"labels": {"lesion": [1, 2], "ignore": [2]}})
    msg = str(info.value)
    assert str(root / "masks" / "c0.png") in msg
    assert "labels [2] are in both labels.lesion [1, 2] and labels.ignore [2]" in msg
    assert "remove it from one list" in msg
    assert snapshot(out) == before


def palette_png(path: Path, indices: np.ndarray, palette: list[tuple[int, int, int]]):
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    im.putpalette([c for colour in palette for c in colour] + [0, 0, 0] * (256 - len(palette)))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def test_palette_mask_read_by_index_and_logged(tmp_path, caplog):
    indices = np.zeros((8, 8), np.uint8)
    indices[2:4, 2:4] = 1
    indices[5:7, 5:7] = 255  # PASCAL VOC's "void" index, a light colour
    path = tmp_path / "voc.png"
    palette_png(path, indices, [(0, 0, 0), (128, 0, 0)] + [(0, 0, 0)] * 253 + [(224, 224, 192)])
    with caplog.at_level(logging.INFO, logger="lesionbench.io"):
        labels = read_label_raster(path)
    np.testing.assert_array_equal(labels, indices)
    assert f"{path}: palette PNG mask, read by palette index" in caplog.text
    # the same file read as an image gives its colours
    assert read_raster(path, palette="colour")[2, 2].tolist() == [128, 0, 0]


@pytest.mark.parametrize(
    "palette, disagreement",
    [
        ([(255, 0, 0), (0, 0, 0)], "index 0 = colour (255, 0, 0); index 1 = colour (0, 0, 0)"),  # inverted
        ([(255, 255, 255), (255, 0, 0)], "index 0 = colour (255, 255, 255)"),
    ],
)
def test_palette_mask_that_colour_would_read_differently_is_refused(prepared_once, palette, disagreement):
    root, out, before = prepared_once
    indices = np.zeros((16, 16), np.uint8)
    indices[2:6, 2:6] = 1
    palette_png(root / "masks" / "c1.png", indices, palette)
    with pytest.raises(SourceError) as info:
        prepare(root, out, {"labels": {"lesion": [1]}})
    msg = str(info.value)
    assert f"{root / 'masks' / 'c1.png'}: palette PNG whose palette contradicts its indices ({disagreement})" in msg
    assert "read by palette index" in msg and "Save it as a greyscale label map" in msg
    assert snapshot(out) == before


def test_multi_page_tiff_is_refused_not_read_as_its_first_page(prepared_once):
    """A 3D TIFF stack of masks would otherwise be read by PIL as its first page: a silent 2D answer."""
    root, out, before = prepared_once
    pages = [np.zeros((16, 16), np.uint8) for _ in range(3)]
    pages[2][4:8, 4:8] = 1  # the lesion is on a page the first-page reading would drop
    stack = root / "masks" / "c1.tif"
    (root / "masks" / "c1.png").unlink()
    Image.fromarray(pages[0]).save(stack, save_all=True, append_images=[Image.fromarray(p) for p in pages[1:]])
    for read in (read_label_raster, read_raster):
        with pytest.raises(ImageReadError, match=re.escape(f"{stack}: holds 3 pages (e.g. a 3D TIFF stack)")):
            read(stack)
    with pytest.raises(SourceError, match="Store volumes as NIfTI"):
        prepare(root, out, {"labels": {"lesion": [1]}})
    assert snapshot(out) == before
    single = root / "single.tif"
    Image.fromarray(pages[2]).save(single)
    np.testing.assert_array_equal(read_label_raster(single), pages[2])


def nifti(path: Path, pixdim):
    img = nib.Nifti1Image(np.zeros((6, 5, 4), np.int16), np.eye(4))
    img.header["pixdim"][1:4] = pixdim
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize("pixdim, found", [((1.0, 0.0, 3.0), "pixdim[2] = 0"), ((1.0, 1.0, -2.5), "pixdim[3] = -2.5")])
def test_nifti_with_zero_or_negative_pixdim(tmp_path, pixdim, found):
    path = nifti(tmp_path / "vol.nii.gz", pixdim)
    with pytest.raises(ImageReadError) as info:
        read_nifti(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: voxel size {found} in the NIfTI header")
    assert f"pixdim[1..3] = {[float(v) for v in pixdim]}" in msg and "Write the true spacing" in msg
    with pytest.raises(SourceError, match=re.escape(f"{path}: voxel size {found} in the NIfTI header")):  # wmh/lits
        read_volume(path)
    assert read_nifti(nifti(tmp_path / "ok.nii.gz", (1.0, 2.0, 3.0)))[2] == (1.0, 2.0, 3.0)


def test_folder_nifti_case_with_zero_pixdim(tmp_path):
    root = tmp_path / "vols"
    nifti(root / "images" / "a.nii.gz", (0.0, 1.0, 1.0))
    nifti(root / "masks" / "a.nii.gz", (0.0, 1.0, 1.0))
    manifest = folder.acquire("vols", {"path": str(root)}, tmp_path / "raw")
    with pytest.raises(SourceError, match=r"images/a\.nii\.gz: voxel size pixdim\[1\] = 0"):
        folder.read_case(manifest.iloc[0].to_dict(), {"path": str(root)}, tmp_path / "raw")


@pytest.mark.parametrize(
    "rows, found",
    [
        ("c0,train\nc1,test\nc0,test\n", "with different splits: {'c0': ['test', 'train']}"),
        ("c0,train\nc1,test\nc1,test\n", "more than once: ['c1']"),
    ],
)
def test_split_csv_listing_a_case_twice(tmp_path, rows, found):
    root = make_folder_dataset(tmp_path / "mine")
    (root / "split.csv").write_text("case_id,split\n" + rows)
    manifest_path = tmp_path / "results" / "manifest.csv"
    from lesionbench.data.steps import acquire as acquire_step

    with pytest.raises(SourceError) as info:
        acquire_step.run("mine", {"source": "folder", "path": str(root)}, tmp_path / "results" / "raw", manifest_path)
    msg = str(info.value)
    assert msg == f"{root / 'split.csv'}: lists cases {found}; keep one row per case_id"
    assert not manifest_path.exists()
