"""IDRiD part A placed by the user (folder or zip) in the real layout, to prepared cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fixtures_real import (
    IDRID_SHAPE,
    IDRID_TEST,
    IDRID_TRAIN,
    build_idrid,
    files_under,
    idrid_config,
    md5,
    write_palette_tiff_1bit,
)
from lesionbench.data import download
from lesionbench.data.prepare import prepare_case
from lesionbench.data.sources import SourceError, SourceMissingError, idrid
from lesionbench.io.cases import load_case, save_case

GT = "2. All Segmentation Groundtruths"


def test_mask_reading_uses_colour_never_alpha(tmp_path):
    m = np.zeros((5, 9), bool)
    m[1, 2] = m[4, 8] = True
    palette = write_palette_tiff_1bit(tmp_path / "p.tif", m)
    with Image.open(palette) as im:
        assert im.mode == "P" and im.getpalette()[:6] == [0, 0, 0, 255, 0, 0]  # index 1 is red
    np.testing.assert_array_equal(idrid.read_binary_mask(palette), m)

    rgba = np.zeros((5, 9, 4), np.uint8)
    rgba[..., 3] = 255  # opaque everywhere: alpha must not make everything lesion
    rgba[m, 0] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.tif")
    np.testing.assert_array_equal(idrid.read_binary_mask(tmp_path / "rgba.tif"), m)

    grey = (m * 76).astype(np.uint8)  # red converted to grey by some tools
    Image.fromarray(grey).save(tmp_path / "grey.tif")
    np.testing.assert_array_equal(idrid.read_binary_mask(tmp_path / "grey.tif"), m)

    (tmp_path / "bad.tif").write_bytes(b"this is not an image")
    with pytest.raises(SourceError, match=r"bad\.tif: cannot read mask"):
        idrid.read_binary_mask(tmp_path / "bad.tif")


def test_acquire_folder_manifest(tmp_path):
    build_idrid(tmp_path / "idrid")
    manifest = idrid.acquire("idrid", idrid_config(tmp_path / "idrid"), tmp_path / "raw")
    assert list(manifest["case_id"]) == [*IDRID_TRAIN, *IDRID_TEST]
    assert list(manifest["official_split"]) == ["train"] * 3 + ["test"] * 2
    m = manifest.set_index("case_id")
    assert m.loc["IDRiD_02", "he"] == ""  # no haemorrhage file: none of that type
    assert m.loc["IDRiD_01", "se"].endswith(f"{GT}/a. Training Set/4. Soft Exudates/IDRiD_01_SE.tif")
    assert m.loc["IDRiD_03", "se"] == "" and m.loc["IDRiD_56", "ex"].endswith("IDRiD_56_EX.tif")
    assert m.loc["IDRiD_55", "mask"] == m.loc["IDRiD_55", "ma"]
    provenance = json.loads((tmp_path / "raw" / "provenance.json").read_text())
    assert provenance["masks_per_type"] == {"MA": 5, "HE": 4, "EX": 5, "SE": 2}
    # path may also point at the 'A. Segmentation' folder itself
    direct = idrid.acquire("idrid", idrid_config(tmp_path / "idrid" / "A. Segmentation"), tmp_path / "raw")
    assert direct.equals(manifest)


def test_read_case_union_of_lesion_types(tmp_path):
    built = build_idrid(tmp_path / "idrid")
    manifest = idrid.acquire("idrid", idrid_config(tmp_path / "idrid"), tmp_path / "raw")
    for row in manifest.to_dict("records"):
        raw = idrid.read_case(row, idrid_config(tmp_path / "idrid"), tmp_path / "raw")
        assert raw.image.shape == (3,) + IDRID_SHAPE and raw.image.dtype == np.uint8
        np.testing.assert_array_equal(raw.image, np.moveaxis(built["images"][row["case_id"]], -1, 0))
        np.testing.assert_array_equal(raw.mask, built["masks"][row["case_id"]].astype(np.uint8))
        assert raw.ignore is None and raw.spacing == (1.0, 1.0) and raw.affine is None
    # IDRiD_01: MA (2 px) + HE (15 px) + EX from the RGBA file (9 px) + SE (12 px); the optic disc never counts
    raw = idrid.read_case(manifest.iloc[0].to_dict(), idrid_config(tmp_path / "idrid"), tmp_path / "raw")
    assert int(raw.mask.sum()) == 2 + 15 + 9 + 12
    assert raw.mask[8:16, 24:32].sum() == 0
    assert raw.source["masks"] == ["IDRiD_01_MA.tif", "IDRiD_01_HE.tif", "IDRiD_01_EX.tif", "IDRiD_01_SE.tif"]


def test_prepare_with_resize_and_spacing(tmp_path):
    build_idrid(tmp_path / "idrid")
    cfg = idrid_config(
        tmp_path / "idrid", spacing=[0.004, 0.004], preprocessing={"normalization": "zscore", "resize": [12, 18]}
    )
    manifest = idrid.acquire("idrid", cfg, tmp_path / "raw")
    raw = idrid.read_case(manifest.iloc[3].to_dict(), cfg, tmp_path / "raw")
    assert raw.spacing == (0.004, 0.004)
    case = prepare_case(raw, "idrid", cfg["preprocessing"])
    save_case(case, tmp_path / "prepared")
    loaded = load_case(tmp_path / "prepared", "IDRiD_55")
    assert loaded.image.shape == (3, 12, 18) and loaded.mask.shape == (12, 18)
    assert loaded.spacing == pytest.approx((0.008, 0.008))
    assert set(np.unique(loaded.mask)) <= {0, 1} and loaded.mask.sum() > 0


def test_zip_is_extracted_without_junk(tmp_path):
    built = build_idrid(tmp_path / "idrid", as_zip=True)
    cfg = idrid_config(tmp_path / "idrid", download={"md5": md5(built["zip"])})
    manifest = idrid.acquire("idrid", cfg, tmp_path / "raw")
    assert len(manifest) == 5
    seg = tmp_path / "idrid" / "A. Segmentation"
    assert download.is_extracted(seg)
    assert not any("__MACOSX" in p or "/._" in p for p in files_under(tmp_path / "idrid"))
    raw = idrid.read_case(manifest.iloc[0].to_dict(), cfg, tmp_path / "raw")
    np.testing.assert_array_equal(raw.mask, built["masks"]["IDRiD_01"].astype(np.uint8))
    # a second run uses the extracted folder
    assert idrid.acquire("idrid", cfg, tmp_path / "raw").equals(manifest)


def test_zip_wrong_md5_or_truncated_leaves_nothing(tmp_path):
    built = build_idrid(tmp_path / "idrid", as_zip=True)
    with pytest.raises(SourceError, match=r"A\. Segmentation\.zip: MD5 .* does not match the expected 0{32}"):
        idrid.acquire("idrid", idrid_config(tmp_path / "idrid", download={"md5": "0" * 32}), tmp_path / "raw")
    assert files_under(tmp_path / "idrid") == ["A. Segmentation.zip"]
    data = built["zip"].read_bytes()
    built["zip"].write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"A\. Segmentation\.zip: truncated or corrupt zip archive"):
        idrid.acquire("idrid", idrid_config(tmp_path / "idrid"), tmp_path / "raw")
    assert files_under(tmp_path / "idrid") == ["A. Segmentation.zip"]


def test_zip_with_traversal_is_rejected(tmp_path):
    import zipfile

    root = tmp_path / "idrid"
    root.mkdir()
    with zipfile.ZipFile(root / "A. Segmentation.zip", "w") as zf:
        zf.writestr("A. Segmentation/1. Original Images/a. Training Set/IDRiD_01.jpg", b"x")
        zf.writestr("A. Segmentation/../../escaped.txt", b"evil")
    with pytest.raises(SourceError, match=r"escaped\.txt' points outside"):
        idrid.acquire("idrid", idrid_config(root), tmp_path / "raw")
    assert files_under(root) == ["A. Segmentation.zip"] and not (tmp_path / "escaped.txt").exists()


def test_missing_says_where_to_get_and_put(tmp_path):
    with pytest.raises(SourceMissingError) as err:
        idrid.acquire("idrid", idrid_config(tmp_path / "nowhere"), tmp_path / "raw")
    msg = str(err.value)
    assert idrid.LANDING_PAGE in msg and str(tmp_path / "nowhere") in msg and "A. Segmentation.zip" in msg
    assert "81 JPEG images" in msg and "SE 40" in msg


def test_layout_errors_name_the_file(tmp_path):
    build_idrid(tmp_path / "idrid")
    seg = tmp_path / "idrid" / "A. Segmentation"
    orphan = seg / GT / "b. Testing Set" / "1. Microaneurysms" / "IDRiD_80_MA.tif"
    write_palette_tiff_1bit(orphan, np.zeros(IDRID_SHAPE, bool))
    with pytest.raises(SourceError, match=r"IDRiD_80_MA\.tif: mask without its image IDRiD_80"):
        idrid.acquire("idrid", idrid_config(tmp_path / "idrid"), tmp_path / "raw")
    orphan.unlink()
    small = seg / GT / "a. Training Set" / "3. Hard Exudates" / "IDRiD_02_EX.tif"
    write_palette_tiff_1bit(small, np.zeros((4, 4), bool))
    manifest = idrid.acquire("idrid", idrid_config(tmp_path / "idrid"), tmp_path / "raw")
    with pytest.raises(SourceError, match=r"IDRiD_02_EX\.tif: mask shape \(4, 4\) != image shape \(24, 36\)"):
        idrid.read_case(manifest.iloc[1].to_dict(), idrid_config(tmp_path / "idrid"), tmp_path / "raw")
    import shutil

    shutil.rmtree(seg / GT / "b. Testing Set" / "4. Soft Exudates")
    with pytest.raises(SourceError, match=r"b\. Testing Set: no '4\. Soft Exudates' folder"):
        idrid.acquire("idrid", idrid_config(tmp_path / "idrid"), tmp_path / "raw")


def test_through_the_data_stage_files(tmp_path):
    """acquire -> raw_manifest.csv -> prepare, as the rules run it: empty mask columns survive the CSV."""
    import pandas as pd

    from lesionbench.data.steps import acquire as acquire_step
    from lesionbench.data.steps import prepare as prepare_step
    from lesionbench.io.tables import read_table

    built = build_idrid(tmp_path / "idrid")
    cfg = idrid_config(tmp_path / "idrid", preprocessing={"normalization": "zscore", "resize": [12, 18]})
    results = tmp_path / "results"
    acquire_step.run("idrid", cfg, results / "raw", results / "raw_manifest.csv")
    pd.DataFrame({"case_id": ["IDRiD_01", "IDRiD_02", "IDRiD_55"], "split": ["train", "val", "test"]}).to_csv(
        results / "split.csv", index=False
    )
    cases = prepare_step.run(
        "idrid",
        cfg,
        results / "raw_manifest.csv",
        results / "split.csv",
        results / "raw",
        results / "prepared",
        results / "cases.csv",
    )
    assert list(cases["case_id"]) == ["IDRiD_01", "IDRiD_02", "IDRiD_55"]
    assert list(cases["shape"]) == ["12x18"] * 3 and list(cases["channels"]) == [3] * 3
    raw = idrid.read_case(read_table(results / "raw_manifest.csv", ["case_id"]).iloc[1].to_dict(), cfg, results / "raw")
    np.testing.assert_array_equal(raw.mask, built["masks"]["IDRiD_02"].astype(np.uint8))  # HE column empty
