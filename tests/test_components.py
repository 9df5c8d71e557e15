import numpy as np

from lesionbench.components import label_components, size_fractions
from lesionbench.data.lesions import assign_quartile, enumerate_lesions, quartile_edges


def test_diagonal_neighbours_are_one_lesion_in_2d():
    mask = np.zeros((6, 6), np.uint8)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = 1   # touch only at corners: one lesion under 8-connectivity
    mask[0, 5] = 1
    labels, n = label_components(mask)
    assert n == 2
    assert labels[1, 1] == labels[3, 3] != labels[0, 5]


def test_corner_touching_voxels_are_one_lesion_in_3d():
    mask = np.zeros((3, 3, 3), np.uint8)
    mask[0, 0, 0] = mask[1, 1, 1] = mask[2, 2, 2] = 1
    assert label_components(mask)[1] == 1


def test_size_fraction_2d_is_pixels_over_image_pixels():
    mask = np.zeros((10, 20), np.uint8)
    mask[0:2, 0:3] = 1      # 6 px
    mask[5, 10] = 1         # 1 px
    table = enumerate_lesions(mask)
    assert table["voxels"].tolist() == [6, 1]
    np.testing.assert_allclose(table["size_fraction"], [6 / 200, 1 / 200])
    assert table["bbox"].tolist() == ["0:2,0:3", "5:6,10:11"]


def test_size_fraction_3d_uses_largest_slice_area():
    mask = np.zeros((4, 10, 10), np.uint8)
    mask[0, 0:2, 0:2] = 1   # 4 px in slice 0
    mask[1, 0:3, 0:3] = 1   # 9 px in slice 1  <- largest axial slice
    mask[2, 0:1, 0:2] = 1   # 2 px in slice 2
    table = enumerate_lesions(mask)
    assert len(table) == 1
    assert table.loc[0, "voxels"] == 15
    assert table.loc[0, "slice_area"] == 9
    assert table.loc[0, "size_fraction"] == 9 / 100
    labels, n = label_components(mask)
    np.testing.assert_allclose(size_fractions(labels, n), [0.09])


def test_empty_mask_has_no_lesions():
    assert len(enumerate_lesions(np.zeros((5, 5), np.uint8))) == 0


def test_quartile_edges_and_assignment():
    sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    edges = quartile_edges(sizes, "d")
    assert (edges["q25"], edges["q50"], edges["q75"]) == (3.0, 5.0, 7.0)
    assert (edges["min"], edges["max"], edges["n_lesions"]) == (1.0, 9.0, 9)
    got = assign_quartile([0.5, 3, 3.01, 5, 6, 7, 7.5, 100], edges).tolist()
    assert got == ["Q1", "Q1", "Q2", "Q2", "Q3", "Q3", "Q4", "Q4"]


def test_quartile_edges_without_lesions_is_an_error():
    import pytest

    from lesionbench.data.lesions import LesionError

    with pytest.raises(LesionError, match="no test-split reference lesions"):
        quartile_edges([], "wmh")
