"""postprocess: threshold (>=) then removal of components (full connectivity) below a size."""

import numpy as np
import pytest

from lesionbench.postprocess import binarize, postprocess


def test_threshold_is_inclusive():
    prob = np.array([[0.49, 0.5, 0.51], [0.0, 1.0, 0.2]], np.float32)
    out = postprocess(prob, 0.5, 0)
    assert out.dtype == bool
    assert out.tolist() == [[False, True, True], [False, True, False]]


def test_small_components_removed_with_full_connectivity():
    m = np.zeros((8, 8), np.uint8)
    m[0, 0] = m[1, 1] = 1  # diagonal pair: one 8-connected component of 2 pixels
    m[7, 2] = 1  # single pixel
    m[3:5, 6:8] = 1  # 4 pixels
    out = postprocess(m, 0.5, 2)
    assert out[0, 0] and out[1, 1] and not out[7, 2] and out[3:5, 6:8].all()
    assert out.sum() == 6
    assert postprocess(m, 0.5, 5).sum() == 0
    assert postprocess(m, 0.5, 1).sum() == 7 and postprocess(m, 0.5, 0).sum() == 7


def test_3d_corner_connectivity_and_idempotence():
    rng = np.random.default_rng(0)
    prob = rng.random((6, 9, 9))
    once = postprocess(prob, 0.8, 3)
    assert np.array_equal(postprocess(once, 0.8, 3), once)
    assert np.array_equal(postprocess(once.astype(np.uint8), 0.8, 3), once)
    v = np.zeros((3, 3, 3), bool)
    v[0, 0, 0] = v[1, 1, 1] = True  # corner neighbours: one 26-connected component
    assert postprocess(v, 0.5, 2).sum() == 2


def test_bool_input_is_not_modified_and_binarize_passes_it_through():
    m = np.zeros((4, 4), bool)
    m[0, 0] = True
    out = postprocess(m, 0.5, 2)
    assert m[0, 0] and not out.any()
    assert binarize(m, 0.5) is m


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros(4), 0.5, 0), "2D or 3D"),
        ((np.zeros((2, 2)), float("nan"), 0), "threshold"),
        ((np.full((2, 2), np.nan), 0.5, 0), "NaN"),
        ((np.zeros((2, 2)), 0.5, -1), "min_component_voxels"),
        ((np.zeros((2, 2)), 0.5, 1.5), "min_component_voxels"),
    ],
)
def test_bad_input_is_named(args, message):
    with pytest.raises(ValueError, match=message):
        postprocess(*args)
