"""Our metrics against MONAI 1.6 (HD95, ASD, NSD) and against a direct full-image implementation of the
lesion-wise rules, on random 2D and 3D mask pairs with anisotropic spacing.

MONAI computes borders exactly as we do: ``get_mask_edges`` crops to the union box with a margin of one
voxel and takes ``mask ^ scipy.ndimage.binary_erosion(mask)`` (face-connected cross, outside counted as
background); distances are Euclidean with the spacing, from a k-d tree over edge voxels (float32 results,
hence the 1e-4 tolerance). ``HausdorffDistanceMetric(percentile=95, directed=False)`` is the maximum of the
two directed percentiles (torch.quantile, linear), ``SurfaceDistanceMetric(symmetric=True)`` the pooled
mean, ``SurfaceDiceMetric`` counts distances <= tau.
"""

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from lesionbench.components import label_components
from lesionbench.metrics import border, case_metrics, evaluate_case

monai_metrics = pytest.importorskip("monai.metrics")
monai_utils = pytest.importorskip("monai.metrics.utils")


def blob(rng, shape):
    """Random lesion-like mask: thresholded smoothed noise, sometimes tiny specks, often touching edges."""
    noise = ndimage.gaussian_filter(rng.random(shape), rng.uniform(0.6, 2.0))
    m = noise > np.quantile(noise, rng.uniform(0.8, 0.97))
    if rng.random() < 0.3:
        m |= rng.random(shape) < 0.01
    return m


def random_pairs(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        nd = 2 if len(out) % 2 else 3
        shape = tuple(rng.integers(12, 48, size=2)) if nd == 2 else tuple(rng.integers(6, 20, size=3))
        spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, size=nd))
        ref, pred = blob(rng, shape), blob(rng, shape)
        if ref.any() and pred.any():
            out.append((ref, pred, spacing, float(rng.uniform(0.2, 4.0))))
    return out


def monai_values(ref, pred, spacing, tau):
    y = torch.from_numpy(ref[None, None].astype(np.float32))
    y_pred = torch.from_numpy(pred[None, None].astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd = monai_metrics.HausdorffDistanceMetric(include_background=True, percentile=95, directed=False)
        asd = monai_metrics.SurfaceDistanceMetric(include_background=True, symmetric=True)
        nsd = monai_metrics.SurfaceDiceMetric(class_thresholds=[tau], include_background=True)
        return (
            hd(y_pred, y, spacing=list(spacing)).item(),
            asd(y_pred, y, spacing=list(spacing)).item(),
            nsd(y_pred, y, spacing=list(spacing)).item(),
        )


def test_border_equals_monai_edges():
    for ref, pred, _, _ in random_pairs(40, seed=11):
        edges_pred, edges_ref = monai_utils.get_mask_edges(pred, ref, crop=False)
        assert np.array_equal(border(ref), edges_ref) and np.array_equal(border(pred), edges_pred)


def test_hd95_asd_nsd_equal_monai_on_200_random_pairs():
    pairs = random_pairs(200, seed=2024)
    assert sum(p[0].ndim == 3 for p in pairs) == 100
    worst = np.zeros(3)
    for ref, pred, spacing, tau in pairs:
        ours = case_metrics(ref, pred, spacing, tolerance_mm=tau)
        theirs = monai_values(ref, pred, spacing, tau)
        worst = np.maximum(worst, np.abs(np.array([ours.hd95, ours.asd, ours.nsd]) - theirs))
    assert worst[0] < 1e-4 and worst[1] < 1e-4 and worst[2] < 1e-4, worst


def brute_force_lesions(ref, pred, spacing, r, tau, penalty):
    """The lesion-wise rules on full images: labels, distance-transform dilations, merged regions."""
    nd = ref.ndim
    full = np.ones((3,) * nd, bool)
    lab, n = label_components(ref)
    lab = lab * (ref > 0)
    plab, m = ndimage.label(pred, structure=full)
    dil = np.zeros(ref.shape, bool)
    for i in range(1, n + 1):
        dil |= ndimage.distance_transform_edt(lab != i, sampling=spacing) <= r + 1e-9
    region, _ = ndimage.label(dil, structure=full)
    rows, matched = {}, set()
    for i in range(1, n + 1):
        g = region[lab == i][0]
        hits = sorted(set(np.unique(plab[(region == g) & (plab > 0)]).tolist()))
        matched.update(hits)
        members = (lab > 0) & (region == g)
        if hits:
            s = case_metrics(members, np.isin(plab, hits), spacing, tolerance_mm=tau)
            rows[i] = (True, s.dice, s.hd95, s.asd, s.nsd, s.contour_f1)
        else:
            rows[i] = (False, 0.0, penalty, penalty, 0.0, 0.0)
    return rows, m - len(matched)


def test_lesionwise_equals_full_image_rules_on_random_cases():
    rng = np.random.default_rng(7)
    for t in range(24):
        nd = 2 if t % 2 else 3
        shape = (40, 44) if nd == 2 else (10, 22, 20)
        spacing = tuple(float(s) for s in rng.uniform(0.4, 2.5, size=nd))
        ref = blob(rng, shape).astype(np.uint8)
        pred = blob(rng, shape) | (ndimage.binary_dilation(ref, iterations=1) & (rng.random(shape) < 0.7))
        r, tau = float(rng.uniform(0.0, 4.0)), float(rng.uniform(0.3, 2.0))
        ev = evaluate_case(ref, pred, spacing, tolerance_mm=tau, dilation_mm=r)
        rows = ev.lesion_rows()
        expected, n_fp = brute_force_lesions(ref, pred, spacing, r, tau, ev.penalty_mm)
        got = {x["lesion_id"]: x for x in rows if x["kind"] == "reference"}
        assert sorted(got) == sorted(expected)
        for i, (det, dice, hd, asd, nsd, f1) in expected.items():
            x = got[i]
            assert x["detected"] == det
            assert (x["dice"], x["hd95"], x["asd"], x["nsd"], x["contour_f1"]) == pytest.approx(
                (dice, hd, asd, nsd, f1), abs=1e-9
            )
        assert sum(x["kind"] == "false_positive" for x in rows) == n_fp
        case = case_metrics(ref, pred, spacing, tolerance_mm=tau)
        assert ev.scores.as_dict() == pytest.approx(case.as_dict(), abs=1e-12)
