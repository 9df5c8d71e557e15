"""Case-level metrics on hand-computed cases (docs/metrics.md)."""

import math

import numpy as np
import pytest
from scipy import ndimage

from lesionbench.metrics import border, case_metrics, default_penalty, evaluate_case
from lesionbench.metrics.surface import segment_percentile, within


def shifted_box_distances(n, k, s0, ndim):
    """Directed border distances (either direction: the pair is symmetric) of an n^ndim box and the same
    box shifted by k voxels along axis 0 at spacing s0 there, when every other spacing is >= k * s0 and
    k <= (n - 1) / 2, so the nearest border voxel is always straight along axis 0.

    Per level z of the shifted box (z = k .. k + n - 1) its side ring (4(n-1) voxels in 3D, 2 in 2D) lies
    on the other box's side ring while z <= n - 1 (distance 0), and above it is (z - n + 1) s0 from the top
    face; the (n-2)^(ndim-1) inner voxels of its bottom and top faces are k s0 from the other box's bottom
    and top faces."""
    ring = 4 * (n - 1) if ndim == 3 else 2
    inner = (n - 2) ** (ndim - 1)
    d = [0.0] * (ring * (n - k))
    for j in range(1, k + 1):
        d += [j * s0] * ring
    d += [k * s0] * (2 * inner)
    return np.array(d)


@pytest.mark.parametrize("ndim, n, k, spacing, at_edge", [
    (2, 4, 1, (1.0, 3.0), False),
    (2, 9, 3, (0.5, 1.6), True),
    (3, 5, 1, (0.6, 0.7, 0.9), False),
    (3, 7, 2, (1.2, 3.0, 2.5), True),
    (3, 6, 2, (0.3, 0.6, 0.61), True),
])
def test_shifted_boxes_closed_form(ndim, n, k, spacing, at_edge):
    shape = (n + k + 4,) * ndim
    o = 0 if at_edge else 2           # at_edge: the boxes touch the image border on every low side
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    ref[tuple(slice(o, o + n) for _ in range(ndim))] = True
    pred[(slice(o + k, o + k + n),) + tuple(slice(o, o + n) for _ in range(ndim - 1))] = True
    d = shifted_box_distances(n, k, spacing[0], ndim)
    assert d.size == n ** ndim - (n - 2) ** ndim   # every surface voxel is a border voxel
    s = case_metrics(ref, pred, spacing, tolerance_mm=spacing[0])
    assert s.dice == pytest.approx((n - k) / n)
    assert s.iou == pytest.approx((n - k) / (n + k))
    assert s.hd95 == pytest.approx(np.percentile(d, 95))
    assert s.asd == pytest.approx(d.mean())
    within_tau = np.count_nonzero(d <= spacing[0] + 1e-12) / d.size
    assert s.nsd == pytest.approx(within_tau)
    assert s.contour_f1 == pytest.approx(within_tau)


def test_square_offset_by_one_by_hand():
    # 4x4 squares, the prediction one row lower, spacing 1 mm (rows) x 3 mm (columns):
    # both borders have 12 pixels, six at distance 0 and six at 1 mm from the other border.
    ref = np.zeros((10, 10), bool)
    ref[2:6, 2:6] = True
    pred = np.roll(ref, 1, axis=0)
    s = case_metrics(ref, pred, (1.0, 3.0), tolerance_mm=1.0)
    assert (s.dice, s.iou, s.hd95, s.asd) == pytest.approx((0.75, 0.6, 1.0, 0.5))
    assert (s.contour_f1, s.nsd) == (1.0, 1.0)                  # distance exactly tau counts
    s = case_metrics(ref, pred, (1.0, 3.0), tolerance_mm=0.999)
    assert (s.contour_f1, s.nsd) == pytest.approx((0.5, 0.5))


def test_tolerance_exactly_tau_with_inexact_floats():
    # 2 voxels at 0.7 mm = 1.4 mm, which is 1.4000000000000001 in floating point; tau = 1.4 counts it
    ref = np.zeros((12, 12), bool)
    ref[3:8, 3:8] = True
    pred = np.roll(ref, 2, axis=1)
    s = case_metrics(ref, pred, (5.0, 0.7), tolerance_mm=1.4)
    assert s.nsd == 1.0 and s.contour_f1 == 1.0
    assert s.hd95 == pytest.approx(1.4)
    s = case_metrics(ref, pred, (5.0, 0.7), tolerance_mm=1.39)
    assert s.nsd < 1.0
    assert within(np.array([0.7 * 3 - 0.7]), 1.4)[0]


def test_single_voxels():
    ref = np.zeros((5, 6, 7), bool)
    pred = np.zeros_like(ref)
    ref[1, 2, 3] = True
    pred[3, 2, 5] = True
    spacing = (2.0, 1.0, 0.5)
    dist = math.hypot(2 * 2.0, 2 * 0.5)                          # 4.123 mm
    s = case_metrics(ref, pred, spacing, tolerance_mm=4.1)
    assert (s.dice, s.iou, s.contour_f1, s.nsd) == (0.0, 0.0, 0.0, 0.0)
    assert s.hd95 == pytest.approx(dist) and s.asd == pytest.approx(dist)
    s = case_metrics(ref, pred, spacing, tolerance_mm=dist)
    assert (s.contour_f1, s.nsd) == (1.0, 1.0)
    s = case_metrics(ref, ref, spacing, tolerance_mm=1e-6)
    assert (s.dice, s.iou, s.hd95, s.asd, s.contour_f1, s.nsd) == (1.0, 1.0, 0.0, 0.0, 1.0, 1.0)
    for bad in (0.0, -1.0, math.nan, math.inf):               # the schema's rule: tau > 0
        with pytest.raises(ValueError, match=f"contour tolerance must be a finite number > 0 mm, got {bad!r}"):
            case_metrics(ref, ref, spacing, tolerance_mm=bad)


def test_border_touching_the_image_edge():
    band = np.zeros((6, 9), bool)
    band[0:3, :] = True                   # touches the top, left and right edges
    b = border(band)
    # outside the image is background: rows 0 and 2 and the end columns are border, inner row 1 is not
    expected = band.copy()
    expected[1, 1:-1] = False
    assert np.array_equal(b, expected)
    assert np.array_equal(b, band ^ ndimage.binary_erosion(band))
    full = np.ones((4, 5), bool)
    assert border(full).sum() == 4 * 5 - 2 * 3


def test_empty_masks_never_nan():
    shape, spacing = (8, 10, 12), (3.0, 0.5, 0.5)
    empty = np.zeros(shape, bool)
    some = empty.copy()
    some[2:4, 3:5, 3:5] = True
    diag = math.sqrt((8 * 3.0) ** 2 + (10 * 0.5) ** 2 + (12 * 0.5) ** 2)
    assert default_penalty(shape, spacing) == pytest.approx(diag)
    both = case_metrics(empty, empty, spacing, tolerance_mm=1)
    assert (both.dice, both.iou, both.hd95, both.asd, both.contour_f1, both.nsd) == (1, 1, 0, 0, 1, 1)
    for ref, pred in ((empty, some), (some, empty)):
        one = case_metrics(ref, pred, spacing, tolerance_mm=1)
        assert (one.dice, one.iou, one.contour_f1, one.nsd) == (0, 0, 0, 0)
        assert one.hd95 == pytest.approx(diag) and one.asd == pytest.approx(diag)
        assert case_metrics(ref, pred, spacing, tolerance_mm=1, penalty_mm=50.0).hd95 == 50.0


def test_empty_flags_and_rows():
    empty = np.zeros((16, 16), np.uint8)
    some = empty.copy()
    some[4:7, 4:7] = 1
    ev = evaluate_case(empty, empty, (1.0, 1.0), tolerance_mm=1, dilation_mm=1)
    row = ev.case_row()
    assert row["ref_empty"] and row["pred_empty"] and row["dice"] == 1.0 and ev.lesion_rows() == []
    ev = evaluate_case(some, empty, (1.0, 1.0), tolerance_mm=1, dilation_mm=1)
    row = ev.case_row()
    assert not row["ref_empty"] and row["pred_empty"] and row["hd95"] == pytest.approx(math.sqrt(2) * 16)
    assert [r["detected"] for r in ev.lesion_rows()] == [False]
    ev = evaluate_case(empty, some, (1.0, 1.0), tolerance_mm=1, dilation_mm=1)
    rows = ev.lesion_rows()
    assert ev.case_row()["ref_empty"] and [r["kind"] for r in rows] == ["false_positive"]
    assert rows[0]["size_fraction"] == pytest.approx(9 / 256)


def test_segment_percentile_matches_numpy():
    rng = np.random.default_rng(3)
    values = rng.random(500) * 10
    seg = rng.integers(0, 7, 500)
    out = segment_percentile(values, seg, 8, 95)
    for g in range(7):
        assert out[g] == np.percentile(values[seg == g], 95)
    assert out[7] == 0.0


def test_bad_arguments_are_named():
    m = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="shape"):
        case_metrics(m, np.zeros((4, 5), bool), (1, 1), tolerance_mm=1)
    with pytest.raises(ValueError, match="spacing"):
        case_metrics(m, m, (1, 0), tolerance_mm=1)
    with pytest.raises(ValueError, match="tolerance"):
        case_metrics(m, m, (1, 1), tolerance_mm=-1)
    with pytest.raises(ValueError, match="penalty"):
        case_metrics(m, m, (1, 1), tolerance_mm=1, penalty_mm=0)


def test_score_from_border_points_equals_case_metrics():
    from lesionbench.metrics import score
    from lesionbench.metrics.surface import border_points

    ref = np.zeros((10, 10), bool)
    ref[2:6, 2:6] = True
    pred = np.roll(ref, 1, axis=0)
    spacing = (1.0, 3.0)
    s = score(int(ref.sum()), int(pred.sum()), int((ref & pred).sum()), border_points(ref, spacing),
              border_points(pred, spacing), tolerance_mm=1.0, penalty_mm=99.0)
    assert s == case_metrics(ref, pred, spacing, tolerance_mm=1.0)
