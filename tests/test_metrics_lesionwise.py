"""Lesion-wise evaluation (BraTS 2023 rules) on hand-computed cases."""

import math

import numpy as np
import pytest
from scipy import ndimage

from lesionbench.metrics import case_metrics, evaluate_case, find_parts
from lesionbench.metrics.matching import dilate


def run(ref, pred, spacing=(1.0, 1.0), r=2.0, tau=1.0, **kw):
    ev = evaluate_case(ref, pred, spacing, tolerance_mm=tau, dilation_mm=r, **kw)
    return ev, ev.lesion_rows()


def refs(rows):
    return [x for x in rows if x["kind"] == "reference"]


def fps(rows):
    return [x for x in rows if x["kind"] == "false_positive"]


def test_many_to_one_hits_use_the_union():
    ref = np.zeros((20, 20), np.uint8)
    ref[5:9, 4:12] = 1                                  # one lesion, 32 px
    pred = np.zeros((20, 20), bool)
    pred[5:9, 4:7] = True                               # two predicted pieces with a gap column between
    pred[5:9, 8:12] = True
    ev, rows = run(ref, pred)
    assert len(refs(rows)) == 1 and fps(rows) == []
    row = rows[0]
    assert row["detected"] and row["lesion_id"] == 1 and row["voxels"] == 32
    expected = case_metrics(ref, pred, (1.0, 1.0), tolerance_mm=1.0)
    assert row["dice"] == pytest.approx(2 * 28 / 60) == pytest.approx(expected.dice)
    for key in ("iou", "hd95", "asd", "contour_f1", "nsd"):
        assert row[key] == pytest.approx(getattr(expected, key))
    assert ev.case_row()["n_hit_lesions"] == 1 and ev.case_row()["n_fp_lesions"] == 0


def test_component_touching_two_lesions_is_a_hit_for_both():
    ref = np.zeros((20, 30), np.uint8)
    ref[5:8, 2:6] = 1
    ref[5:8, 20:24] = 1                                 # 14 px apart: separate even after dilation by 2
    pred = np.zeros((20, 30), bool)
    pred[6, 3:23] = True                                # one bar across both
    ev, rows = run(ref, pred, r=2.0)
    assert [x["detected"] for x in refs(rows)] == [True, True] and fps(rows) == []
    a, b = refs(rows)
    bar = pred.astype(np.uint8)
    for row, lesion in ((a, ref * (np.arange(30) < 10)), (b, ref * (np.arange(30) >= 10))):
        expected = case_metrics(lesion, bar, (1.0, 1.0), tolerance_mm=1.0)
        assert row["dice"] == pytest.approx(expected.dice) and row["hd95"] == pytest.approx(expected.hd95)


def test_hit_within_the_dilation_but_without_overlap():
    ref = np.zeros((30, 30), np.uint8)
    ref[10:13, 10:13] = 1
    pred = np.zeros((30, 30), bool)
    pred[10:13, 16:19] = True                           # 4 columns from the lesion border (x = 12 -> 16)
    _, rows = run(ref, pred, spacing=(1.0, 0.5), r=2.0)  # 4 x 0.5 mm = 2 mm: exactly r, a hit
    assert [x["kind"] for x in rows] == ["reference"] and rows[0]["detected"]
    assert rows[0]["dice"] == 0.0 and rows[0]["hd95"] == pytest.approx(3.0)  # 6 px x 0.5 mm (far edge)
    _, rows = run(ref, pred, spacing=(1.0, 0.5), r=1.99)
    assert [x["kind"] for x in rows] == ["reference", "false_positive"]
    missed, fp = rows
    diag = math.hypot(30 * 1.0, 30 * 0.5)
    assert not missed["detected"] and missed["dice"] == 0 and missed["hd95"] == pytest.approx(diag)
    assert fp["lesion_id"] == 1 and fp["voxels"] == 9 and fp["size_fraction"] == pytest.approx(9 / 900)
    assert (fp["dice"], fp["iou"], fp["contour_f1"], fp["nsd"]) == (0, 0, 0, 0) and fp["asd"] == pytest.approx(diag)


@pytest.mark.parametrize("gap, merged", [(4, True), (5, True), (6, False)])
def test_merging_by_touching_dilations(gap, merged):
    # single-pixel lesions `gap` pixels apart, r = 2 mm at 1 mm: the discs reach x <= 2 and x >= gap - 2;
    # they overlap (gap 4), touch (gap 5: x = 2 and x = 3 are neighbours) or stay apart (gap 6)
    ref = np.zeros((11, 20), np.uint8)
    ref[5, 3] = ref[5, 3 + gap] = 1
    pred = np.zeros((11, 20), bool)
    pred[5, 3] = True                                   # predicts the first lesion exactly
    ev, rows = run(ref, pred, r=2.0, tau=0.5)
    groups = [x.group for x in ev.lesions if x.kind == "reference"]
    assert (groups[0] == groups[1]) is merged
    a, b = refs(rows)
    assert a["lesion_id"] == 1 and b["lesion_id"] == 2
    if merged:
        # one merged lesion (2 px) against the hit (1 px): both rows carry its scores
        assert a["detected"] and b["detected"]
        assert a["dice"] == b["dice"] == pytest.approx(2 / 3)
        assert a["hd95"] == b["hd95"] == pytest.approx(np.percentile([0.0, gap], 95))
        assert a["asd"] == pytest.approx(gap / 3)
    else:
        assert a["detected"] and not b["detected"] and a["dice"] == 1.0 and b["dice"] == 0.0


def test_merging_with_anisotropic_spacing():
    ref = np.zeros((5, 40), np.uint8)
    pred = np.zeros((5, 40), bool)
    for gap, merged in ((9, True), (10, False)):         # r = 2 mm at 0.5 mm: discs reach 4 px
        ref[:] = 0
        ref[2, 5] = ref[2, 5 + gap] = 1
        pred[:] = False
        pred[2, 5] = True
        ev, _ = run(ref, pred, spacing=(3.0, 0.5), r=2.0)
        g = [x.group for x in ev.lesions if x.kind == "reference"]
        assert (g[0] == g[1]) is merged


def test_dilation_is_the_spacing_aware_ball():
    spacing = (2.0, 0.7, 1.1)
    mask = np.zeros((9, 20, 18), np.uint8)
    mask[4, 8:11, 7:9] = 1
    mask[5, 9, 8] = 1
    parts = find_parts(mask, spacing)
    for r in (0.0, 0.7, 2.0, 2.2, 3.5):
        got = dilate(parts, 0, r)
        pts = np.argwhere(mask) * spacing
        grid = np.stack(np.meshgrid(*[np.arange(s) for s in mask.shape], indexing="ij"), -1) * spacing
        d = np.sqrt(((grid[..., None, :] - pts) ** 2).sum(-1)).min(-1)
        assert np.array_equal(got, d <= r + 1e-9), r


def test_ignore_removes_a_false_positive_and_keeps_lesion_ids():
    ref = np.zeros((30, 30), np.uint8)
    ref[2:5, 2:5] = 1                                   # lesion 1: entirely under ignore
    ref[10:14, 10:14] = 1                               # lesion 2
    ignore = np.zeros((30, 30), np.uint8)
    ignore[0:7, 0:7] = 1
    ignore[20:28, 20:28] = 1
    pred = np.zeros((30, 30), bool)
    pred[10:14, 10:14] = True
    pred[22:25, 22:25] = True                           # a false positive inside the ignore region
    ev, rows = run(ref, pred, ignore=ignore)
    assert [(x["kind"], x["lesion_id"]) for x in rows] == [("reference", 2)]
    assert rows[0]["dice"] == 1.0 and rows[0]["voxels"] == 16
    case = ev.case_row()
    assert case["pred_voxels"] == 16 and case["ref_voxels"] == 16 and case["dice"] == 1.0
    assert (case["n_ref_lesions"], case["n_hit_lesions"], case["n_fp_lesions"]) == (1, 1, 0)
    _, rows = run(ref, pred)                            # without ignore: lesion 1 missed, one false positive
    assert [(x["kind"], x["lesion_id"], x["detected"]) for x in rows] == [
        ("reference", 1, False), ("reference", 2, True), ("false_positive", 1, False)]


def test_partially_ignored_lesion_reports_its_stored_size():
    ref = np.zeros((20, 20), np.uint8)
    ref[5:10, 5:10] = 1
    ignore = np.zeros_like(ref)
    ignore[5:10, 5:7] = 1
    pred = ref.astype(bool)
    ev, rows = run(ref, pred, ignore=ignore)
    assert rows[0]["voxels"] == 25 and rows[0]["size_fraction"] == pytest.approx(25 / 400)
    assert rows[0]["dice"] == 1.0 and ev.case_row()["ref_voxels"] == 15


def test_postprocessing_applies_before_matching():
    ref = np.zeros((20, 20), np.uint8)
    ref[5:9, 5:9] = 1
    prob = np.zeros((20, 20), np.float32)
    prob[5:9, 5:9] = 0.9
    prob[15, 15] = 0.95                                 # one voxel: removed by min_component_voxels = 2
    prob[2, 15:17] = 0.5                                # exactly at the threshold: kept (>=)
    ev, rows = run(ref, prob, threshold=0.5, min_component_voxels=2)
    assert [x["kind"] for x in rows] == ["reference", "false_positive"] and rows[1]["voxels"] == 2
    assert ev.case_row()["pred_voxels"] == 18


def test_3d_false_positive_size_fraction_is_the_largest_slice():
    ref = np.zeros((6, 10, 10), np.uint8)
    ref[1:3, 1:3, 1:3] = 1
    pred = np.zeros_like(ref, dtype=bool)
    pred[1:3, 1:3, 1:3] = True
    pred[3, 6:9, 6:9] = True                            # 9 px in slice 3
    pred[4, 7, 7:9] = True                              # 2 px in slice 4: one 26-connected FP of 11 voxels
    _, rows = run(ref, pred, spacing=(3.0, 1.0, 1.0), r=1.0)
    fp = fps(rows)
    assert len(fp) == 1 and fp[0]["voxels"] == 11 and fp[0]["size_fraction"] == pytest.approx(9 / 100)
    assert refs(rows)[0]["size_fraction"] == pytest.approx(4 / 100)


def test_lesion_ids_follow_the_labelling_order():
    from lesionbench.components import label_components

    rng = np.random.default_rng(4)
    ref = (ndimage.gaussian_filter(rng.random((48, 48)), 1.5) > 0.55).astype(np.uint8)
    labels, n = label_components(ref)
    ev, rows = run(ref, ref.astype(bool), r=0.0)
    ids = [x["lesion_id"] for x in refs(rows)]
    assert ids == list(range(1, n + 1))
    sizes = np.bincount((labels * (ref > 0)).ravel(), minlength=n + 1)[1:]
    assert [x["voxels"] for x in refs(rows)] == sizes.tolist()


@pytest.mark.parametrize("all_pairs_max, per_chunk", [(0, 1), (0, 7), (0, 2_000_000), (62_500, 2_000_000)])
def test_box_pairs_equal_all_pairs(monkeypatch, all_pairs_max, per_chunk):
    from lesionbench.metrics import boxes

    monkeypatch.setattr(boxes, "_ALL_PAIRS_MAX", all_pairs_max)
    monkeypatch.setattr(boxes, "_PAIRS_PER_CHUNK", per_chunk)
    rng = np.random.default_rng(8)
    for t in range(150):
        nd = int(rng.integers(2, 4))

        def random_boxes(n, nd=nd):
            lo = rng.integers(0, 50, (n, nd))
            ext = rng.integers(1, 6, (n, nd))
            if n and rng.random() < 0.3:
                ext[rng.integers(n)] = rng.integers(20, 50, nd)   # one long box
            return lo, lo + ext

        (la, ha), (lb, hb) = random_boxes(int(rng.integers(0, 40))), random_boxes(int(rng.integers(0, 40)))
        spacing = rng.uniform(0.3, 3, nd)
        within = None if t % 2 else float(rng.uniform(0, 10))
        a, b = boxes.box_pairs(la, ha, lb, hb, spacing, within)
        if within is None:
            ok = np.all((la[:, None] < hb[None]) & (lb[None] < ha[:, None]), axis=2)
        else:
            ok = boxes.box_gaps(la[:, None], ha[:, None], lb[None], hb[None], spacing) <= within * (1 + 1e-9)
        assert sorted(zip(a.tolist(), b.tolist())) == sorted(zip(*[x.tolist() for x in np.nonzero(ok)]))
