import numpy as np
import pytest

from lesionbench.data.prepare import normalize, prepare_case
from lesionbench.data.sources import RawCase, SourceError, SourceMissingError, folder
from lesionbench.io.cases import load_case, save_case
from lesionbench.io.images import write_nifti, write_png


def test_zscore_uses_non_background_voxels():
    image = np.zeros((1, 10, 10), np.float32)
    image[0, 2:8, 2:8] = np.arange(36).reshape(6, 6) + 1.0
    out = normalize(image, {"normalization": "zscore"})
    fg = out[0, 2:8, 2:8]
    assert abs(fg.mean()) < 1e-5 and abs(fg.std() - 1) < 1e-5
    assert out.dtype == np.float32 and image[0, 2, 2] == 1.0  # input untouched


def test_window_and_minmax():
    hu = np.array([[[-1000, -100, 50, 200, 900]]], np.int16)
    np.testing.assert_allclose(normalize(hu, {"normalization": "window", "window": [-100, 200]})[0, 0],
                               [0, 0, 0.5, 1, 1])
    x = np.linspace(0, 1, 1001, dtype=np.float32)[None, None]
    out = normalize(x, {"normalization": "minmax"})
    assert out.min() == 0 and out.max() == 1


def test_resize_keeps_small_lesions_and_scales_spacing():
    image = np.random.default_rng(0).random((1, 4, 40, 40)).astype(np.float32)
    mask = np.zeros((4, 40, 40), np.uint8)
    mask[1, 10:14, 10:14] = 1
    raw = RawCase("c", image, mask, (3.0, 1.0, 1.0), affine=np.diag([1.0, 1.0, 3.0, 1.0]), axis_order=(2, 0, 1))
    case = prepare_case(raw, "d", {"normalization": "none", "resize": [20, 20]})
    assert case.mask.shape == (4, 20, 20) and case.image.shape == (1, 4, 20, 20)
    assert case.spacing == (3.0, 2.0, 2.0)
    assert case.mask[1].sum() == 4  # a 4x4 lesion becomes 2x2
    np.testing.assert_allclose(np.diag(case.affine), [2.0, 2.0, 3.0, 1.0])


def test_ignore_voxels_are_never_lesion():
    mask = np.ones((8, 8), np.uint8)
    ignore = np.zeros((8, 8), np.uint8)
    ignore[:4] = 1
    case = prepare_case(RawCase("c", np.ones((1, 8, 8)), mask, (1.0, 1.0), ignore), "d", {"normalization": "none"})
    assert case.mask[:4].sum() == 0 and case.mask[4:].sum() == 32


def make_folder(root, masks):
    for case_id, (image, labels) in masks.items():
        if image.ndim == 3 and image.shape[-1] != 3:  # volume
            write_nifti(image, None, root / "images" / f"{case_id}.nii.gz", spacing=(0.9, 0.9, 3.0))
            write_nifti(labels, None, root / "masks" / f"{case_id}.nii.gz", spacing=(0.9, 0.9, 3.0))
        else:
            write_png(image, root / "images" / f"{case_id}.png")
            write_png(labels, root / "masks" / f"{case_id}.png")


def test_folder_source_reads_2d_and_3d_with_labels(tmp_path):
    rng = np.random.default_rng(1)
    labels3d = np.zeros((16, 12, 5), np.uint8)
    labels3d[2:4, 2:4, 1] = 1
    labels3d[8:10, 8:10, 3] = 2
    make_folder(tmp_path, {
        "vol": (rng.random((16, 12, 5)).astype(np.float32), labels3d),
    })
    manifest = folder.acquire("mine", {"path": str(tmp_path)}, tmp_path / "raw")
    assert manifest["case_id"].tolist() == ["vol"]
    raw = folder.read_case(manifest.iloc[0].to_dict(), {"labels": {"lesion": [1], "ignore": [2]}}, tmp_path)
    assert raw.image.shape == (1, 5, 16, 12) and raw.mask.shape == (5, 16, 12)
    assert raw.spacing == pytest.approx((3.0, 0.9, 0.9)) and raw.axis_order == (2, 0, 1)
    assert raw.mask.sum() == 4 and raw.ignore.sum() == 4 and raw.mask[1].sum() == 4 and raw.ignore[3].sum() == 4


def test_rgba_mask_is_binarized_on_colour_not_alpha(tmp_path):
    image = np.full((8, 8, 3), 100, np.uint8)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 255                  # opaque everywhere
    rgba[2:4, 2:4, 0] = 255             # red lesion
    make_folder(tmp_path, {"f": (image, rgba)})
    manifest = folder.scan(tmp_path)
    raw = folder.read_case(manifest.iloc[0].to_dict(), {}, tmp_path)
    assert raw.mask.sum() == 4 and raw.image.shape == (3, 8, 8) and raw.spacing == (1.0, 1.0)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(SourceMissingError, match="images"):
        folder.scan(tmp_path)
    make_folder(tmp_path, {"a": (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))})
    write_png(np.zeros((8, 8), np.uint8), tmp_path / "images" / "b.png")
    with pytest.raises(SourceError, match=r"without both an image and a mask: \['b'\]"):
        folder.scan(tmp_path)
    write_png(np.zeros((9, 8), np.uint8), tmp_path / "masks" / "b.png")
    manifest = folder.scan(tmp_path)
    with pytest.raises(SourceError, match=r"b.png: mask shape \(9, 8\) != image shape \(8, 8\)"):
        folder.read_case(manifest.iloc[1].to_dict(), {}, tmp_path)


def test_saved_case_round_trips_and_failed_write_leaves_nothing(tmp_path):
    raw = RawCase("c1", np.ones((1, 6, 6)), np.eye(6, dtype=np.uint8), (0.5, 0.5))
    case = prepare_case(raw, "d", {"normalization": "none"})
    save_case(case, tmp_path)
    back = load_case(tmp_path, "c1", mmap=True)
    np.testing.assert_array_equal(back.mask, case.mask)
    assert back.spacing == (0.5, 0.5) and back.ignore is None
    case.mask = case.mask * 2  # breaks the contract
    with pytest.raises(ValueError, match="case 'c1': mask must be uint8 with values 0/1"):
        save_case(case, tmp_path / "other")
    assert not (tmp_path / "other" / "c1").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c1"]
