"""LiTS through the Decathlon archive (served on 127.0.0.1) and the original release, to prepared cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures_real import (
    LITS_SHAPE,
    LITS_ZOOMS,
    build_evil_tar,
    build_lits_original,
    build_msd_tar,
    closed_port_url,
    files_under,
    lits_config,
    lits_volumes,
    md5,
    serve,
    write_nifti,
)
from lesionbench.data import download
from lesionbench.data.prepare import prepare_case
from lesionbench.data.sources import SourceError, SourceMissingError, lits
from lesionbench.io.cases import load_case, save_case
from lesionbench.io.predictions import read_prediction, write_prediction


@pytest.fixture()
def msd(tmp_path):
    store = tmp_path / "store"
    built = build_msd_tar(store / "Task03_Liver.tar")
    with serve({"/Task03_Liver.tar": store / "Task03_Liver.tar"}) as server:
        yield server, built, tmp_path / "data" / "lits"


def test_test_list_is_the_documented_rule():
    assert list(lits.TEST_CASES) == lits.derive_test_cases()
    assert len(lits.TEST_CASES) == 40 and min(lits.TEST_CASES) >= 0 and max(lits.TEST_CASES) <= 130
    assert lits.official_split(2) == "test" and lits.official_split(0) == "train"


def test_download_extract_and_manifest(msd, tmp_path):
    server, built, root = msd
    cfg = lits_config(root, server.url + "/Task03_Liver.tar", built["md5"])
    manifest = lits.acquire("lits", cfg, tmp_path / "raw")
    assert list(manifest["case_id"]) == ["liver_0", "liver_2", "liver_5"]
    assert list(manifest["official_split"]) == ["train", "test", "train"]
    assert manifest["image"][1] == str(root / "Task03_Liver" / "imagesTr" / "liver_2.nii.gz")
    assert manifest["mask"][1] == str(root / "Task03_Liver" / "labelsTr" / "liver_2.nii.gz")
    # only what the study reads was extracted: no macOS side files, no unlabelled imagesTs
    assert files_under(root / "Task03_Liver") == sorted(
        [
            download.EXTRACTED_STAMP,
            "dataset.json",
            "imagesTr",
            "labelsTr",
            *[f"{d}/liver_{n}.nii.gz" for d in ("imagesTr", "labelsTr") for n in (0, 2, 5)],
        ]
    )
    assert md5(root / "Task03_Liver.tar") == built["md5"]
    provenance = json.loads((tmp_path / "raw" / "provenance.json").read_text())
    assert provenance["release"] == "msd" and provenance["md5"] == built["md5"]
    # a second run uses the extracted folder: no download, same manifest
    hits = list(server.hits)
    again = lits.acquire("lits", cfg, tmp_path / "raw")
    assert server.hits == hits and again.equals(manifest)


def test_keep_archive_false_removes_the_tar(msd, tmp_path):
    server, built, root = msd
    cfg = lits_config(root, server.url + "/Task03_Liver.tar", built["md5"], keep_archive=False)
    lits.acquire("lits", cfg, tmp_path / "raw")
    assert not (root / "Task03_Liver.tar").exists() and lits.scan_msd(root / "Task03_Liver").shape[0] == 3


def test_read_case_and_prepare(msd, tmp_path):
    server, built, root = msd
    manifest = lits.acquire("lits", lits_config(root, server.url + "/Task03_Liver.tar", built["md5"]), tmp_path / "raw")
    row = manifest.iloc[1].to_dict()
    raw = lits.read_case(row, lits_config(root), tmp_path / "raw")
    ct, seg = built["arrays"][2]
    assert raw.case_id == "liver_2"
    assert raw.image.dtype == np.int16 and raw.image.shape == (1, 6, 16, 14)  # (C, k, i, j)
    np.testing.assert_array_equal(raw.image[0], np.moveaxis(ct, -1, 0))
    np.testing.assert_array_equal(raw.mask, np.moveaxis(seg == 2, -1, 0).astype(np.uint8))
    assert raw.mask.dtype == np.uint8 and raw.mask.sum() == 13  # tumour only: the liver is background
    assert raw.ignore is None
    assert raw.spacing == pytest.approx((2.5, 0.7, 0.75)) and raw.axis_order == (2, 0, 1)
    np.testing.assert_allclose(raw.affine, np.diag([0.7, 0.75, 2.5, 1.0]))

    case = prepare_case(raw, "lits", {"normalization": "window", "window": [-100, 200], "resize": None})
    folder = save_case(case, tmp_path / "prepared")
    loaded = load_case(tmp_path / "prepared", "liver_2")
    assert folder.name == "liver_2" and loaded.image.dtype == np.float32
    assert loaded.image.min() >= 0 and loaded.image.max() <= 1
    np.testing.assert_array_equal(loaded.mask, raw.mask)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["axis_order"] == [2, 0, 1] and meta["spacing"] == pytest.approx([2.5, 0.7, 0.75])
    # a prediction written from the prepared layout overlays the source file
    out = write_prediction(loaded.mask, meta, tmp_path / "pred")
    import nibabel as nib

    source_order = np.asarray(nib.load(str(out)).dataobj)
    np.testing.assert_array_equal(source_order, (seg == 2).astype(np.uint8))
    np.testing.assert_array_equal(read_prediction(tmp_path / "pred", meta), loaded.mask.astype(bool))


def test_wrong_md5_fails_and_leaves_nothing(msd, tmp_path):
    server, _built, root = msd
    cfg = lits_config(root, server.url + "/Task03_Liver.tar", "0" * 32)
    with pytest.raises(SourceError) as err:
        lits.acquire("lits", cfg, tmp_path / "raw")
    assert "Task03_Liver.tar" in str(err.value) and "MD5" in str(err.value)
    assert files_under(root) == []  # no archive, no extracted folder, no temporary file


def test_truncated_download_fails_and_leaves_nothing(msd, tmp_path):
    server, built, root = msd
    server.truncate.add("/Task03_Liver.tar")
    with pytest.raises(SourceError, match=r"Task03_Liver\.tar"):
        lits.acquire("lits", lits_config(root, server.url + "/Task03_Liver.tar", built["md5"]), tmp_path / "raw")
    assert files_under(root) == []


def test_truncated_placed_archive(tmp_path):
    built = build_msd_tar(tmp_path / "full" / "Task03_Liver.tar")
    root = tmp_path / "lits"
    root.mkdir()
    data = (tmp_path / "full" / "Task03_Liver.tar").read_bytes()
    (root / "Task03_Liver.tar").write_bytes(data[: int(len(data) * 0.6)])
    # the expected MD5 catches it before extraction ...
    with pytest.raises(SourceError, match=r"Task03_Liver\.tar: MD5 .* does not match the expected " + built["md5"]):
        lits.acquire("lits", lits_config(root, md5_value=built["md5"], enabled=False), tmp_path / "raw")
    assert files_under(root) == ["Task03_Liver.tar"]
    # ... and without a usable hash, extraction itself fails cleanly, with no half-extracted folder
    cut_md5 = md5(root / "Task03_Liver.tar")
    with pytest.raises(SourceError, match=r"Task03_Liver\.tar: truncated"):
        lits.acquire("lits", lits_config(root, md5_value=cut_md5, enabled=False), tmp_path / "raw")
    assert files_under(root) == ["Task03_Liver.tar"]


def test_traversal_archive_rejected(tmp_path):
    root = tmp_path / "lits"
    root.mkdir()
    evil_md5 = build_evil_tar(root / "Task03_Liver.tar", "Task03_Liver/../../escaped.txt")
    with pytest.raises(SourceError, match=r"Task03_Liver\.tar: member .*escaped\.txt' points outside"):
        lits.acquire("lits", lits_config(root, md5_value=evil_md5, enabled=False), tmp_path / "raw")
    assert files_under(root) == ["Task03_Liver.tar"] and not (tmp_path / "escaped.txt").exists()


def test_missing_files_say_where_to_get_and_put_them(tmp_path):
    root = tmp_path / "nothing"
    with pytest.raises(SourceMissingError) as err:
        lits.acquire("lits", lits_config(root, enabled=False), tmp_path / "raw")
    msg = str(err.value)
    assert lits.MSD_URL in msg and str(root / "Task03_Liver.tar") in msg and lits.MSD_MD5 in msg
    assert "volume-N.nii" in msg and "download.enabled" in msg
    with pytest.raises(SourceMissingError, match="could not reach"):
        lits.acquire("lits", lits_config(root, closed_port_url() + "/Task03_Liver.tar"), tmp_path / "raw")
    assert not root.exists() or files_under(root) == []


def test_original_lits_release(tmp_path):
    root = tmp_path / "LiTS"
    arrays = build_lits_original(root, numbers=(0, 2, 40))
    manifest = lits.acquire("lits", lits_config(root, enabled=False), tmp_path / "raw")
    assert list(manifest["case_id"]) == ["liver_0", "liver_2", "liver_40"]  # volume-131 has no labels
    assert list(manifest["official_split"]) == ["train", "test", "train"]
    assert manifest["image"][2].endswith("Training Batch 2/volume-40.nii")
    raw = lits.read_case(manifest.iloc[2].to_dict(), lits_config(root), tmp_path / "raw")
    np.testing.assert_array_equal(raw.mask, np.moveaxis(arrays[40][1] == 2, -1, 0).astype(np.uint8))
    assert raw.image.dtype == np.int16 and raw.spacing == pytest.approx((2.5, 0.7, 0.75))


def test_user_extracted_folder_without_archive(tmp_path):
    built = build_msd_tar(tmp_path / "Task03_Liver.tar", numbers=(7,))
    root = tmp_path / "placed"
    download.extract(tmp_path / "Task03_Liver.tar", root / "Task03_Liver", root="Task03_Liver")
    (root / "Task03_Liver" / download.EXTRACTED_STAMP).unlink()  # as if extracted by hand
    manifest = lits.acquire("lits", lits_config(root, enabled=False), tmp_path / "raw")
    assert list(manifest["case_id"]) == ["liver_7"] and built["arrays"][7][0].shape == LITS_SHAPE
    (root / "Task03_Liver" / "labelsTr" / "liver_7.nii.gz").unlink()
    with pytest.raises(SourceError, match=r"1 files listed in dataset\.json are missing.*labelsTr/liver_7"):
        lits.acquire("lits", lits_config(root, enabled=False), tmp_path / "raw")


def test_bad_labels_and_shapes_name_the_file(tmp_path):
    ct, seg = lits_volumes(3)
    image = write_nifti(tmp_path / "volume-3.nii", ct, LITS_ZOOMS)
    bad = seg.copy()
    bad[0, 0, 0] = 7
    write_nifti(tmp_path / "segmentation-3.nii", bad, LITS_ZOOMS)
    row = {"case_id": "liver_3", "image": str(image), "mask": str(tmp_path / "segmentation-3.nii")}
    with pytest.raises(SourceError, match=r"segmentation-3\.nii: label values 0\.\.7 outside 0\.\.2"):
        lits.read_case(row, lits_config(tmp_path), tmp_path)
    write_nifti(tmp_path / "segmentation-3.nii", seg[:, :, :4], LITS_ZOOMS)
    with pytest.raises(
        SourceError,
        match=r"segmentation-3\.nii: label shape \(16, 14, 4\) != image shape "
        r"\(16, 14, 6\)",
    ):
        lits.read_case(row, lits_config(tmp_path), tmp_path)
    (tmp_path / "volume-3.nii").write_bytes(b"not a nifti")
    with pytest.raises(SourceError, match=r"volume-3\.nii: cannot read NIfTI"):
        lits.read_case(row, lits_config(tmp_path), tmp_path)


def test_scaled_volume_becomes_float32(tmp_path):
    ct, _seg = lits_volumes(4)
    path = write_nifti(tmp_path / "v.nii.gz", ct, LITS_ZOOMS, slope=2.0)
    vol, _affine, _spacing = lits.read_volume(path)
    assert vol.dtype == np.float32 and vol.shape == (6, 16, 14)
    np.testing.assert_allclose(vol, np.moveaxis(ct.astype(np.float32) * 2, -1, 0))
    # slabs smaller than the volume give the same result
    big = np.arange(4 * 3 * 70, dtype=np.int16).reshape(4, 3, 70)
    vol, _, _ = lits.read_volume(write_nifti(tmp_path / "long.nii.gz", big, (1.0, 1.0, 1.0)))
    np.testing.assert_array_equal(vol, np.moveaxis(big, -1, 0))


def test_truncated_volume_names_the_file(tmp_path):
    ct, seg = lits_volumes(6)
    full = write_nifti(tmp_path / "full.nii.gz", ct, LITS_ZOOMS).read_bytes()
    (tmp_path / "volume-6.nii.gz").write_bytes(full[: len(full) // 2])
    write_nifti(tmp_path / "segmentation-6.nii.gz", seg, LITS_ZOOMS)
    row = {
        "case_id": "liver_6",
        "image": str(tmp_path / "volume-6.nii.gz"),
        "mask": str(tmp_path / "segmentation-6.nii.gz"),
    }
    with pytest.raises(SourceError, match=r"volume-6\.nii\.gz: (truncated or unreadable voxel data|cannot read)"):
        lits.read_case(row, lits_config(tmp_path), tmp_path)
