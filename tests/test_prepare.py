import numpy as np
import pandas as pd
import pytest

from lesionbench.data.checks import ValidationError, dataset_summary
from lesionbench.data.prepare import (
    LESION_COUNT_COLUMNS,
    normalize,
    prepare_case,
    prepare_dataset,
    resize_lesion_counts,
    source_lesion_mask,
    source_to_prepared_index,
)
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
    np.testing.assert_allclose(
        normalize(hu, {"normalization": "window", "window": [-100, 200]})[0, 0], [0, 0, 0.5, 1, 1]
    )
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
    make_folder(
        tmp_path,
        {
            "vol": (rng.random((16, 12, 5)).astype(np.float32), labels3d),
        },
    )
    manifest = folder.acquire("mine", {"path": str(tmp_path)}, tmp_path / "raw")
    assert manifest["case_id"].tolist() == ["vol"]
    raw = folder.read_case(manifest.iloc[0].to_dict(), {"labels": {"lesion": [1], "ignore": [2]}}, tmp_path)
    assert raw.image.shape == (1, 5, 16, 12) and raw.mask.shape == (5, 16, 12)
    assert raw.spacing == pytest.approx((3.0, 0.9, 0.9)) and raw.axis_order == (2, 0, 1)
    assert raw.mask.sum() == 4 and raw.ignore.sum() == 4 and raw.mask[1].sum() == 4 and raw.ignore[3].sum() == 4


def test_rgba_mask_is_binarized_on_colour_not_alpha(tmp_path):
    image = np.full((8, 8, 3), 100, np.uint8)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 255  # opaque everywhere
    rgba[2:4, 2:4, 0] = 255  # red lesion
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


# ---- what the prepare resize does to the reference lesions ---------------------------------------------


def hand_made_mask():
    """8 x 8 source mask, halved to 4 x 4 (a 2x2 block mean, then >= 0.5):
    A (0, 0) one pixel          -> block mean 0.25: lost
    E rows 0-1, cols 6-7        -> prepared (0, 3): survives alone
    B rows 4-5, cols 2-3        -> prepared (2, 1)
    C rows 4-5, cols 5-6        -> prepared (2, 2) and (2, 3) (block means 0.5): touches B's -> merged
    """
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = 1
    mask[0:2, 6:8] = 1
    mask[4:6, 2:4] = 1
    mask[4:6, 5:7] = 1
    return mask


def test_resize_reports_lost_and_merged_lesions_exactly():
    mask = hand_made_mask()
    case = prepare_case(
        RawCase("c", np.ones((1, 8, 8)), mask, (1.0, 1.0)), "d", {"normalization": "none", "resize": [4, 4]}
    )
    expected = np.zeros((4, 4), np.uint8)
    expected[0, 3] = 1
    expected[2, 1:4] = 1
    np.testing.assert_array_equal(case.mask, expected)
    assert resize_lesion_counts(mask, case.mask) == {
        "lesions_source": 4,
        "lesions_prepared": 2,
        "lesions_lost": 1,
        "lesions_merged": 1,
    }
    # no resize: the same lesions, nothing lost
    assert resize_lesion_counts(mask, mask) == {
        "lesions_source": 4,
        "lesions_prepared": 4,
        "lesions_lost": 0,
        "lesions_merged": 0,
    }
    # volumes: counted in 3D (26-connectivity), the in-plane mapping applied slice by slice
    vol = np.stack([mask, np.zeros_like(mask), mask])
    counts = resize_lesion_counts(vol, np.stack([case.mask, np.zeros_like(case.mask), case.mask]))
    assert counts == {"lesions_source": 8, "lesions_prepared": 4, "lesions_lost": 2, "lesions_merged": 2}
    np.testing.assert_array_equal(source_to_prepared_index(8, 4), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(source_to_prepared_index(3, 4), [0, 2, 3])


def test_ignored_source_voxels_are_not_counted_as_lost_lesions():
    mask = hand_made_mask()
    ignore = np.zeros((8, 8), np.uint8)
    ignore[0, 0] = 1  # A is ignored at source: not a reference lesion at all
    raw = RawCase("c", np.ones((1, 8, 8)), mask, (1.0, 1.0), ignore)
    assert source_lesion_mask(raw).sum() == mask.sum() - 1
    case = prepare_case(raw, "d", {"normalization": "none", "resize": [4, 4]})
    assert resize_lesion_counts(source_lesion_mask(raw), case.mask)["lesions_lost"] == 0


def test_cases_table_and_summary_carry_the_lesion_counts(tmp_path):
    big = np.zeros((16, 16), np.uint8)
    big[:8, :8] = hand_made_mask()
    masks = {"a": (np.full((16, 16), 50, np.uint8), big * 255), "b": (np.full((16, 16), 50, np.uint8), big * 255)}
    make_folder(tmp_path / "src", masks)
    cfg = {
        "source": "folder",
        "path": str(tmp_path / "src"),
        "preprocessing": {"normalization": "none", "resize": [8, 8]},
    }
    manifest = folder.acquire("mine", cfg, tmp_path / "raw")
    split = pd.DataFrame({"case_id": ["a", "b"], "split": ["train", "test"]})
    table = prepare_dataset(
        "mine", cfg, manifest, split, tmp_path / "raw", tmp_path / "prepared", tmp_path / "cases.csv"
    )
    assert table[LESION_COUNT_COLUMNS].values.tolist() == [[4, 2, 1, 1], [4, 2, 1, 1]]
    assert pd.read_csv(tmp_path / "cases.csv")["lesions_lost"].tolist() == [1, 1]
    lesions = pd.DataFrame({"case_id": ["a", "a", "b", "b"], "split": ["train", "train", "test", "test"]})
    splits = {"mine": pd.concat([split, pd.DataFrame({"case_id": ["v"], "split": ["val"]})])}
    cases = {
        "mine": pd.concat(
            [
                table,
                pd.DataFrame(
                    [
                        {
                            "case_id": "v",
                            "split": "val",
                            "lesions_source": 3,
                            "lesions_prepared": 0,
                            "lesions_lost": 3,
                            "lesions_merged": 0,
                        }
                    ]
                ),
            ]
        )
    }
    quart = {
        "mine": pd.DataFrame(
            [{"edge_rule": "test_quartiles", "q25": 0.1, "q50": 0.2, "q75": 0.3, "min": 0.0, "max": 1.0}]
        )
    }
    summary = dataset_summary(["mine"], {"mine": {}}, splits, {"mine": lesions}, quart, cases).iloc[0]
    assert (
        summary["lesions_source_train"],
        summary["lesions_prepared_train"],
        summary["lesions_lost_train"],
        summary["lesions_merged_train"],
    ) == (4, 2, 1, 1)
    assert (summary["lesions_source_val"], summary["lesions_lost_val"]) == (3, 3)
    lesions.loc[0, "split"] = "test"  # the lesion table disagrees with cases.csv: a clear error
    with pytest.raises(ValidationError, match=r"mine: cases\.csv counts 2 prepared train lesions, the lesion table 1"):
        dataset_summary(["mine"], {"mine": {}}, splits, {"mine": lesions}, quart, cases)
