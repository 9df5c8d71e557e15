import nibabel as nib
import numpy as np
import pytest

from lesionbench.io.images import read_nifti, read_raster
from lesionbench.io.predictions import PredictionError, distinct_values, read_prediction, write_prediction


def meta3d():
    affine = np.array([[-0.9, 0, 0, 10], [0, 0.9, 0, -5], [0, 0, 3.0, 2], [0, 0, 0, 1]])
    return {
        "case_id": "v1",
        "ndim": 3,
        "shape": [4, 6, 5],
        "spacing": [3.0, 0.9, 0.9],
        "affine": affine.tolist(),
        "axis_order": [2, 0, 1],
    }


def test_volume_prediction_is_written_in_source_orientation(tmp_path):
    meta = meta3d()
    pred = np.zeros((4, 6, 5), np.uint8)
    pred[1, 2, 3] = 1
    path = write_prediction(pred, meta, tmp_path)
    data, affine, spacing = read_nifti(path)
    assert data.shape == (6, 5, 4) and data[2, 3, 1] == 1 and data.sum() == 1
    np.testing.assert_allclose(affine, meta["affine"])
    assert spacing == pytest.approx((0.9, 0.9, 3.0))
    back = read_prediction(tmp_path, meta)
    assert back.dtype == bool and back.shape == (4, 6, 5)
    np.testing.assert_array_equal(back, pred.astype(bool))


def test_2d_prediction_png_round_trip(tmp_path):
    meta = {"case_id": "f1", "ndim": 2, "shape": [5, 7], "spacing": [1, 1], "affine": None, "axis_order": None}
    pred = np.zeros((5, 7), bool)
    pred[1:3, 2] = True
    path = write_prediction(pred, meta, tmp_path)
    assert set(np.unique(read_raster(path))) == {0, 255}
    np.testing.assert_array_equal(read_prediction(tmp_path, meta), pred)


def test_missing_or_misshapen_prediction_is_named(tmp_path):
    meta = {"case_id": "f1", "ndim": 2, "shape": [5, 7], "spacing": [1, 1]}
    with pytest.raises(PredictionError, match=r"f1\.png: prediction for test case 'f1' is missing"):
        read_prediction(tmp_path, meta)
    write_prediction(np.zeros((5, 7)), meta, tmp_path)
    with pytest.raises(PredictionError, match=r"f1.png: shape \(5, 7\) does not match the reference \(6, 7\)"):
        read_prediction(tmp_path, {**meta, "shape": [6, 7]})


def _soft_png(tmp_path):
    """A softmax exported as an 8-bit PNG: grey levels 0..255, the lesion core above 128."""
    yy, xx = np.mgrid[:9, :11]
    prob = np.clip(1.2 - np.hypot(yy - 4, xx - 5) / 4, 0, 1)
    from PIL import Image

    Image.fromarray(np.round(prob * 255).astype(np.uint8)).save(tmp_path / "s1.png")
    return {"case_id": "s1", "ndim": 2, "shape": [9, 11], "spacing": [1, 1]}, prob


def test_soft_probability_png_refused(tmp_path):
    meta, _ = _soft_png(tmp_path)
    with pytest.raises(
        PredictionError,
        match=r"s1.png: prediction holds values \[0, .*\]; a prediction must hold "
        r"0/1 or 0/255\. A probability map needs a threshold",
    ):
        read_prediction(tmp_path, meta)


def test_soft_probability_png_read_with_a_threshold(tmp_path):
    meta, prob = _soft_png(tmp_path)
    stored = np.round(prob * 255).astype(np.uint8) / 255.0
    np.testing.assert_array_equal(read_prediction(tmp_path, meta, threshold=0.5), stored >= 0.5)
    assert 0 < (stored >= 0.5).sum() < stored.size


def test_float_probability_nifti_needs_a_threshold_and_values_in_unit_range(tmp_path):
    from lesionbench.io.images import write_nifti

    meta = {**meta3d(), "axis_order": [2, 0, 1]}
    prob = np.linspace(0, 1, 6 * 5 * 4).reshape(6, 5, 4).astype(np.float32)
    write_nifti(prob, np.asarray(meta["affine"]), tmp_path / "v1.nii.gz")
    with pytest.raises(PredictionError, match="fractional values"):
        read_prediction(tmp_path, meta)
    np.testing.assert_array_equal(
        read_prediction(tmp_path, meta, threshold=0.25), np.transpose(prob, (2, 0, 1)) >= 0.25
    )
    write_nifti(prob * 3, np.asarray(meta["affine"]), tmp_path / "v1.nii.gz")
    with pytest.raises(PredictionError, match=r"outside \[0, 1\]"):
        read_prediction(tmp_path, meta, threshold=0.5)


def test_label_map_prediction_reads_lesion_labels_and_refuses_unknown_values(tmp_path):
    from lesionbench.io.images import write_nifti

    meta = meta3d()
    labels = np.zeros((6, 5, 4), np.uint8)
    labels[1:4, 1:3, 1] = 1  # organ
    labels[2, 2, 1:3] = 2  # lesion
    write_nifti(labels, np.asarray(meta["affine"]), tmp_path / "v1.nii.gz")
    spec = {"lesion": [2], "ignore": None, "values": [1, 2]}
    np.testing.assert_array_equal(read_prediction(tmp_path, meta, labels=spec), np.transpose(labels == 2, (2, 0, 1)))
    with pytest.raises(PredictionError, match=r"values \[0, 1, 2\]; a prediction must hold 0/1 or 0/255"):
        read_prediction(tmp_path, meta)  # binary references: a label map is refused
    with pytest.raises(PredictionError, match=r"0 and the label values \[2\]"):
        read_prediction(tmp_path, meta, labels={"lesion": [2], "ignore": None, "values": [2]})


def test_two_files_for_one_case_are_refused(tmp_path):
    meta = {"case_id": "f1", "ndim": 2, "shape": [5, 7], "spacing": [1, 1]}
    write_prediction(np.zeros((5, 7)), meta, tmp_path)
    (tmp_path / "f1.tif").write_bytes((tmp_path / "f1.png").read_bytes())
    with pytest.raises(PredictionError, match=r"two prediction files for case 'f1': f1\.png, f1\.tif"):
        read_prediction(tmp_path, meta)


@pytest.mark.parametrize(
    "data",
    [
        np.array([[0, 1], [1, 1]], np.uint8),
        np.array([[0, 0], [0, 0]], np.uint8),
        np.array([[3, 3], [3, 3]], np.int16),
        np.array([[0, 5, 2], [7, 0, 5]], np.int32),  # label map: values between min and max looked for
        np.array([[-4, 0], [300, 2]], np.int64),  # span too wide: the sorting path
        np.array([[0.0, 0.25], [1.0, 0.25]]),
        np.asfortranarray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4) % 3),  # NIfTI memory order
        np.array([[True, False]]),
        np.zeros((0, 3), np.uint8),
    ],
)
def test_distinct_values_equal_numpy_unique(data):
    got = distinct_values(data)
    np.testing.assert_array_equal(got, np.unique(data))
    assert got.dtype == data.dtype


@pytest.mark.parametrize("klass", [nib.Nifti1Image, nib.Nifti2Image])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nifti_read_equals_nibabel(tmp_path, klass, suffix):
    """Gzipped NIfTI decompressed in memory gives nibabel's own array (scaling applied), affine and spacing."""
    data = np.random.default_rng(0).integers(-50, 50, (9, 7, 5)).astype(np.int16)
    img = klass(data, np.diag([0.7, 0.8, 2.5, 1.0]))
    img.header.set_slope_inter(0.5, 3.0)
    path = tmp_path / f"vol{suffix}"
    nib.save(img, str(path))
    expected = nib.load(str(path))
    array, affine, spacing = read_nifti(path)
    np.testing.assert_array_equal(array, np.asanyarray(expected.dataobj))
    assert array.dtype == np.float64
    np.testing.assert_allclose(affine, expected.affine)
    np.testing.assert_allclose(spacing, (0.7, 0.8, 2.5), rtol=1e-6)
