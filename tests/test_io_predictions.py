import numpy as np
import pytest

from lesionbench.io.images import read_nifti, read_raster
from lesionbench.io.predictions import PredictionError, read_prediction, write_prediction


def meta3d():
    affine = np.array([[-0.9, 0, 0, 10], [0, 0.9, 0, -5], [0, 0, 3.0, 2], [0, 0, 0, 1]])
    return {"case_id": "v1", "ndim": 3, "shape": [4, 6, 5], "spacing": [3.0, 0.9, 0.9],
            "affine": affine.tolist(), "axis_order": [2, 0, 1]}


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
    with pytest.raises(PredictionError, match="f1.png: prediction for test case 'f1' is missing"):
        read_prediction(tmp_path, meta)
    write_prediction(np.zeros((5, 7)), meta, tmp_path)
    with pytest.raises(PredictionError, match=r"f1.png: shape \(5, 7\) does not match the reference \(6, 7\)"):
        read_prediction(tmp_path, {**meta, "shape": [6, 7]})
