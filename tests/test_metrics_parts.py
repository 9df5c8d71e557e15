"""Boxed components: same components, numbering and borders as labelling the whole image."""

import numpy as np
import pytest
from scipy import ndimage

from lesionbench.components import label_components
from lesionbench.metrics import border, find_parts
from lesionbench.metrics.parts import SPARSE_SHARE, _compact_2d, _same_index, numbering_rule, paint
from lesionbench.postprocess import postprocess


def reference_labels(fg):
    labels, _ = label_components(fg)
    return labels * (fg > 0)


def assert_same_as_labelling(mask, spacing, exclude=None, min_voxels=0):
    fg = mask != 0
    if exclude is not None:
        fg &= exclude == 0
    fg_pp = postprocess(fg, 0.5, min_voxels)
    labels = reference_labels(fg_pp)
    parts = find_parts(mask, spacing, exclude=exclude, min_voxels=min_voxels)
    assert parts.n == labels.max()
    for k in range(parts.n):
        one = paint(parts, [k])
        assert np.array_equal(one, labels == k + 1), k
        assert parts.voxels[k] == one.sum()
        expected = np.argwhere(border(one)) * np.asarray(spacing)
        got = parts.border_points(k)
        assert np.array_equal(got[np.lexsort(got.T[::-1])], expected)


def test_numbering_rule_is_recognised():
    assert numbering_rule(3) == "raster"
    assert numbering_rule(2) in ("raster", "block")


@pytest.mark.parametrize("nd", [2, 3])
def test_random_masks_match_label_components(nd):
    rng = np.random.default_rng(nd)
    for t in range(150):
        shape = tuple(rng.integers(1, 40, size=2)) if nd == 2 else tuple(rng.integers(1, 14, size=3))
        mask = (rng.random(shape) < rng.uniform(0.01, 0.5)).astype(np.uint8)
        exclude = (rng.random(shape) < 0.1).astype(np.uint8) if t % 3 == 0 else None
        assert_same_as_labelling(mask, tuple(rng.uniform(0.3, 3, size=nd)), exclude, min_voxels=int(t % 4))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scattered_image_labelled_from_its_pixel_list(seed):
    """Small components scattered over a whole 2D image (no empty rows or columns to compact away, under
    1/16 foreground: the pixel-list labelling), touching every image edge, with an ignore mask."""
    rng = np.random.default_rng(seed)
    image = np.zeros((90, 70), np.uint8)
    image[rng.random(image.shape) < 0.03] = 1
    image[rng.integers(0, 89, 40), rng.integers(0, 69, 40)] = 1
    image[0, ::7] = image[-1, ::5] = image[::6, 0] = image[::4, -1] = 1
    image[np.arange(90), rng.integers(0, 70, 90)] = 1  # every row occupied: compaction cannot shrink it
    image[10:12, 10:12] = 1  # 2x2 blocks and diagonal chains join into larger components
    assert np.count_nonzero(image) <= image.size // SPARSE_SHARE
    assert _compact_2d(image != 0)[1] is _same_index
    spacing = tuple(rng.uniform(0.3, 3, size=2))
    assert_same_as_labelling(image, spacing)
    assert_same_as_labelling(image, spacing, exclude=(rng.random(image.shape) < 0.1).astype(np.uint8), min_voxels=2)


def test_sparse_volume_with_distant_lesions():
    rng = np.random.default_rng(9)
    vol = np.zeros((24, 96, 80), bool)
    for _ in range(25):
        c = rng.integers([2, 2, 2], [22, 94, 78])
        r = rng.integers(1, 4, size=3)
        vol[tuple(slice(max(a - b, 0), a + b) for a, b in zip(c, r))] = True
    vol ^= rng.random(vol.shape) < 0.002
    assert_same_as_labelling(vol, (3.0, 0.8, 0.8))


def test_touching_the_edges_and_a_full_image():
    img = np.zeros((6, 7), bool)
    img[0, :] = img[:, -1] = True
    img[4:, 0:2] = True
    assert_same_as_labelling(img, (1.0, 2.0))
    assert_same_as_labelling(np.ones((5, 4, 3), bool), (1.0, 1.0, 1.0))
    empty = find_parts(np.zeros((4, 4, 4), bool), (1, 1, 1))
    assert empty.n == 0 and empty.points.shape == (0, 3)


def test_restrict_keeps_numbering_and_select_renumbers():
    mask = np.zeros((12, 12), np.uint8)
    mask[1:4, 1:4] = 1
    mask[6:10, 6:10] = 1
    parts = find_parts(mask, (1.0, 1.0))
    cut = np.zeros_like(mask)
    cut[1:4, 1:4] = 1
    cut[6:8, 6:10] = 1
    restricted = parts.restrict(cut)
    assert restricted.voxels.tolist() == [0, 8] and len(restricted.border_points(0)) == 0
    assert np.array_equal(paint(restricted, [1]), (mask == 1) & (cut == 0))
    second = parts.select(np.array([False, True]))
    assert second.n == 1 and np.array_equal(second.border_points(0), parts.border_points(1))


def test_size_fractions_match_the_shared_definition():
    from lesionbench.components import size_fractions

    rng = np.random.default_rng(5)
    for shape in ((30, 40), (7, 20, 16)):
        mask = ndimage.binary_dilation(rng.random(shape) < 0.02)
        labels, n = label_components(mask)
        parts = find_parts(mask, (1.0,) * len(shape))
        np.testing.assert_allclose(parts.size_fractions(), size_fractions(labels * mask, n))
