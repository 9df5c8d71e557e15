import numpy as np
import pytest

from lesionbench.components import label_components, size_fractions
from lesionbench.data.lesions import assign_quartile, enumerate_lesions, quartile_edges


def test_diagonal_neighbours_are_one_lesion_in_2d():
    mask = np.zeros((6, 6), np.uint8)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = 1  # touch only at corners: one lesion under 8-connectivity
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
    mask[0:2, 0:3] = 1  # 6 px
    mask[5, 10] = 1  # 1 px
    table = enumerate_lesions(mask)
    assert table["voxels"].tolist() == [6, 1]
    np.testing.assert_allclose(table["size_fraction"], [6 / 200, 1 / 200])
    assert table["bbox"].tolist() == ["0:2,0:3", "5:6,10:11"]


def test_size_fraction_3d_uses_largest_slice_area():
    mask = np.zeros((4, 10, 10), np.uint8)
    mask[0, 0:2, 0:2] = 1  # 4 px in slice 0
    mask[1, 0:3, 0:3] = 1  # 9 px in slice 1  <- largest axial slice
    mask[2, 0:1, 0:2] = 1  # 2 px in slice 2
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


def _lesion_rows(test_sizes, train_sizes):
    import pandas as pd

    return pd.DataFrame(
        {
            "split": ["test"] * len(test_sizes) + ["train"] * len(train_sizes),
            "size_fraction": list(test_sizes) + list(train_sizes),
        }
    )


def test_train_quartiles_take_edges_from_the_training_lesions():
    from lesionbench.data.lesions import stratum_edges

    rows = _lesion_rows([0.001, 0.002, 0.004, 0.008], [0.01, 0.02, 0.03, 0.04, 0.05])
    e = stratum_edges(rows, "train_quartiles", "d")
    # np.percentile([.01 .. .05], [25, 50, 75]) = .02, .03, .04; range and count are the test lesions'
    assert (e["q25"], e["q50"], e["q75"]) == pytest.approx((0.02, 0.03, 0.04))
    assert (e["edge_rule"], e["edge_lesions"], e["n_lesions"]) == ("train_quartiles", 5, 4)
    assert (e["min"], e["max"]) == (0.001, 0.008)
    # every test lesion lies below the training Q1 edge: all fall in Q1 by the documented rule
    assert assign_quartile([0.001, 0.002, 0.004, 0.008], e).tolist() == ["Q1"] * 4
    assert assign_quartile([0.02, 0.025, 0.04, 0.041], e).tolist() == ["Q1", "Q2", "Q3", "Q4"]
    t = stratum_edges(rows, "test_quartiles", "d")
    assert (t["q25"], t["q50"], t["q75"]) == pytest.approx((0.00175, 0.003, 0.005))
    assert (t["edge_rule"], t["edge_lesions"]) == ("test_quartiles", 4)


def test_fixed_edges_are_used_as_given():
    from lesionbench.data.lesions import stratum_edges

    rows = _lesion_rows([0.0005, 0.001, 0.002, 0.02, 0.5], [])
    e = stratum_edges(rows, [0.001, 0.01, 0.1], "d")
    assert (e["q25"], e["q50"], e["q75"], e["edge_rule"], e["edge_lesions"]) == (0.001, 0.01, 0.1, "fixed", 0)
    # Q1: s <= 0.001 (edge included), Q2: s <= 0.01, Q3: s <= 0.1, Q4: above
    assert assign_quartile(rows["size_fraction"], e).tolist() == ["Q1", "Q1", "Q2", "Q3", "Q4"]


@pytest.mark.parametrize(
    "rule, message",
    [
        ("median", "must be one of"),
        ([0.1, 0.01, 0.2], "strictly increasing"),
        ([0.1, 0.2], "three"),
        ([0.0, 0.1, 0.2], "in \\(0, 1\\]"),
        (["a", "b", "c"], "must be one of"),
    ],
)
def test_bad_edge_rules_are_errors(rule, message):
    from lesionbench.data.lesions import LesionError, stratum_edges

    with pytest.raises(LesionError, match=message):
        stratum_edges(_lesion_rows([0.1, 0.2], [0.3]), rule, "d")


def test_train_quartiles_without_training_lesions_is_an_error():
    from lesionbench.data.lesions import LesionError, stratum_edges

    with pytest.raises(LesionError, match="training split has no reference lesions"):
        stratum_edges(_lesion_rows([0.1, 0.2], []), "train_quartiles", "d")


def test_lesion_rows_of_a_volume_match_a_whole_volume_count():
    """Voxels and largest slice areas counted in each lesion's box equal counts over the whole labelled volume
    (random blobs: lesions whose boxes overlap, lesions spanning several slices)."""
    rng = np.random.default_rng(3)
    mask = (rng.random((6, 40, 30)) > 0.8).astype(np.uint8)
    labels, n = label_components(mask)
    table = enumerate_lesions(mask)
    ids = np.arange(1, n + 1)
    assert table["voxels"].tolist() == [int((labels == i).sum()) for i in ids]
    assert table["slice_area"].tolist() == [int((labels == i).sum(axis=(1, 2)).max()) for i in ids]
    np.testing.assert_allclose(table["size_fraction"], table["slice_area"] / (40 * 30))
