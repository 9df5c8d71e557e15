"""The ``surfel`` surface definition (docs/metrics.md): surface elements on the voxel-corner grid weighted
by their size, as DeepMind's surface-distance library and MONAI ``use_subvoxels=True`` define them."""

import itertools
import math
import warnings

import numpy as np
import pytest

from lesionbench.metrics import case_metrics, evaluate_case, find_parts
from lesionbench.metrics.nearest import nearest_borders
from lesionbench.metrics.surfels import element_sizes, surfel_parts


def directed(ref, pred, spacing):
    """surface-distance's four arrays: distances and element sizes of each direction."""
    r, p = surfel_parts(find_parts(ref, spacing)), surfel_parts(find_parts(pred, spacing))
    near = nearest_borders(r, p)
    return near.ref_to_pred, r.weights, near.pred_to_ref, p.weights


def test_tables_equal_monai_copy_of_surface_distance_tables():
    """Our derived marching-squares / marching-cubes sizes equal the tables MONAI took from
    surface-distance, code by code, for random anisotropic spacings (MONAI numbers neighbourhoods with its
    own kernel; the code of a neighbourhood is mapped through it)."""
    from monai.metrics.utils import ENCODING_KERNEL, get_code_to_measure_table

    rng = np.random.default_rng(3)
    for ndim in (2, 3):
        kernel = np.asarray(ENCODING_KERNEL[ndim])
        corners = list(itertools.product((0, 1), repeat=ndim))
        theirs_code = [sum(kernel[c] for i, c in enumerate(corners) if code >> i & 1) for code in range(2**2**ndim)]
        for spacing in [(1.0,) * ndim] + [tuple(rng.uniform(0.2, 4.0, ndim)) for _ in range(4)]:
            table = np.asarray(get_code_to_measure_table(spacing)[0], float)
            np.testing.assert_allclose(element_sizes(spacing), table[theirs_code], rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 2.0, 1.0), (0.7, 0.7, 2.5)])
def test_single_voxel_surface_is_the_octahedron_through_its_face_centres(spacing):
    mask = np.zeros((5, 5, 5), bool)
    mask[2, 2, 2] = True
    a, b, c = spacing
    r = surfel_parts(find_parts(mask, spacing))
    assert len(r.points) == 8
    assert r.weights.sum() == pytest.approx(math.sqrt((b * c) ** 2 + (a * c) ** 2 + (a * b) ** 2))


def test_single_pixel_contour_is_the_diamond_through_its_edge_midpoints():
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    r = surfel_parts(find_parts(mask, (2.0, 1.0)))
    assert r.weights.sum() == pytest.approx(2 * math.sqrt(5.0))


@pytest.mark.parametrize(
    "shape, a, b, spacing",
    [((128, 128), (50, 70), (50, 72), (2, 1)), ((128,) * 3, (50, 60, 70), (50, 60, 72), (3, 2, 1))],
)
def test_two_voxels_2mm_apart_published_values(shape, a, b, spacing):
    """surface-distance's test ``test_on_2_pixels_2mm_away`` (2D and 3D): ASD 1.5 each way, HD95 2,
    surface overlap 0.5 each way, surface Dice 0.5 at 1 mm."""
    ref, pred = np.zeros(shape, bool), np.zeros(shape, bool)
    ref[a] = pred[b] = True
    s = case_metrics(ref, pred, spacing, tolerance_mm=1.0, surface_definition="surfel")
    assert (s.hd95, s.asd, s.nsd, s.contour_f1, s.dice) == pytest.approx((2.0, 1.5, 0.5, 0.5, 0.0))
    d_rp, w_r, d_pr, w_p = directed(ref, pred, spacing)
    if len(shape) == 2:  # the four diamond edges, published with their distances
        assert np.sort(d_rp) == pytest.approx([1, 1, 2, 2])
        assert w_r == pytest.approx([0.5 * math.sqrt(5.0)] * 4)
    assert np.sum(w_r * d_rp) / w_r.sum() == pytest.approx(1.5)
    assert np.sum(w_p * d_pr) / w_p.sum() == pytest.approx(1.5)


def test_two_squares_shifted_by_one_pixel_published_surfels():
    """surface-distance's ``test_two_squares_shifted_by_one_pixel``: the surfels listed there (clockwise
    from the top left) and the metrics they give, at spacing (2, 1)."""
    ref = np.zeros((6, 6), bool)
    pred = np.zeros((6, 6), bool)
    ref[1:3, 1:3] = True
    pred[1:4, 1:3] = True
    v, h = 2.0, 1.0
    diag = 0.5 * math.sqrt(h * h + v * v)
    areas_ref = np.array([diag, h, diag, v, diag, h, diag, v])
    areas_pred = np.array([diag, h, diag, v, v, diag, h, diag, v, v])
    d_ref = np.array([0.0] * 5 + [h] + [0.0] * 2)
    d_pred = np.array([0.0] * 5 + [v] * 3 + [0.0] * 2)
    d_rp, w_r, d_pr, w_p = directed(ref, pred, (v, h))
    for d, w, d_exp, w_exp in ((d_rp, w_r, d_ref, areas_ref), (d_pr, w_p, d_pred, areas_pred)):
        assert sorted(zip(d.round(9), w.round(9))) == sorted(zip(d_exp.round(9), w_exp.round(9)))
    s = case_metrics(ref, pred, (v, h), tolerance_mm=1.0, surface_definition="surfel")
    total = areas_ref.sum() + areas_pred.sum()
    assert s.asd == pytest.approx((h * h + v * (h + 2 * diag)) / total)
    assert s.nsd == pytest.approx((total - h - 2 * diag) / total)
    # by hand: in each direction the non-zero distances (1 mm, 2 mm) carry more than 5 % of the contour
    # length, so each 95th percentile is that distance: HD95 = max(1, 2)
    assert h / areas_ref.sum() > 0.05 and (h + 2 * diag) / areas_pred.sum() > 0.05
    assert s.hd95 == pytest.approx(2.0)


def test_two_cubes_shifted_by_one_voxel_published_values():
    """surface-distance's ``test_two_cubes_shifted_by_one_pixel`` (100^3, spacing (2, 1, 1), the masks
    touching the image border): ASD (0.322, 0.339), HD95 2.0, surface overlap (0.842, 0.830), surface
    Dice 0.836 at 1 mm, Dice 0.990; with border voxels NSD is 0.755."""
    ref = np.zeros((100, 100, 100), bool)
    pred = np.zeros((100, 100, 100), bool)
    ref[0:50] = True
    pred[0:51] = True
    spacing = (2.0, 1.0, 1.0)
    d_rp, w_r, d_pr, w_p = directed(ref, pred, spacing)
    assert np.sum(w_r * d_rp) / w_r.sum() == pytest.approx(0.322, abs=5e-4)
    assert np.sum(w_p * d_pr) / w_p.sum() == pytest.approx(0.339, abs=5e-4)
    recall, precision = w_r[d_rp <= 1].sum() / w_r.sum(), w_p[d_pr <= 1].sum() / w_p.sum()
    assert (recall, precision) == pytest.approx((0.842, 0.830), abs=5e-4)
    s = case_metrics(ref, pred, spacing, tolerance_mm=1.0, surface_definition="surfel")
    assert (s.hd95, s.nsd, s.dice) == pytest.approx((2.0, 0.836, 0.990), abs=5e-4)
    assert s.contour_f1 == pytest.approx(2 * precision * recall / (precision + recall))
    assert s.asd == pytest.approx((np.sum(w_r * d_rp) + np.sum(w_p * d_pr)) / (w_r.sum() + w_p.sum()))
    assert case_metrics(ref, pred, spacing, tolerance_mm=1.0).nsd == pytest.approx(0.755, abs=5e-4)


def _random_pair(rng, shape):
    from scipy import ndimage

    ref = ndimage.binary_opening(rng.random(shape) < 0.35) if len(shape) == 2 else rng.random(shape) < 0.3
    pred = ref.copy()
    flip = rng.random(shape) < 0.12
    pred[flip] = ~pred[flip]
    return ref, pred


@pytest.mark.parametrize("ndim", [2, 3])
def test_nsd_equals_monai_use_subvoxels(ndim):
    """MONAI ``compute_surface_dice(use_subvoxels=True)`` (the only MONAI metric with surfels) on random
    anisotropic pairs, some touching the image border."""
    import torch
    from monai.metrics import compute_surface_dice

    rng = np.random.default_rng(11 + ndim)
    for trial in range(12):
        shape = tuple(int(n) for n in rng.integers(6, 24 if ndim == 2 else 12, ndim))
        spacing = tuple(float(s) for s in rng.uniform(0.3, 2.5, ndim))
        tau = float(rng.uniform(0.2, 3.0))
        ref, pred = _random_pair(rng, shape)
        if not ref.any() or not pred.any():
            continue
        ours = case_metrics(ref, pred, spacing, tolerance_mm=tau, surface_definition="surfel").nsd
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = compute_surface_dice(
                torch.from_numpy(pred[None, None]),
                torch.from_numpy(ref[None, None]),
                class_thresholds=[tau],
                include_background=True,
                spacing=list(spacing),
                use_subvoxels=True,
            ).item()
        assert ours == pytest.approx(theirs, abs=1e-4), (trial, shape, spacing, tau)


def test_lesionwise_scores_use_the_same_definition():
    """Two lesions far apart, each with its own prediction: each lesion row's surfel scores equal the
    case-level surfel scores of that lesion and its prediction alone."""
    ref = np.zeros((40, 60), bool)
    pred = np.zeros((40, 60), bool)
    ref[5:12, 5:14] = True
    pred[6:13, 4:12] = True
    ref[25:33, 40:47] = True
    pred[24:31, 41:49] = True
    spacing = (0.8, 0.5)
    ev = evaluate_case(ref, pred, spacing, tolerance_mm=0.6, dilation_mm=1.0, surface_definition="surfel")
    rows = [r for r in ev.lesion_rows() if r["kind"] == "reference"]
    assert len(rows) == 2 and all(r["detected"] for r in rows)
    for row, box in zip(rows, [np.s_[:20, :30], np.s_[20:, 30:]]):
        alone = case_metrics(ref[box], pred[box], spacing, tolerance_mm=0.6, surface_definition="surfel")
        for metric in ("dice", "hd95", "asd", "contour_f1", "nsd"):
            assert row[metric] == pytest.approx(getattr(alone, metric), abs=1e-12), metric
    case = case_metrics(ref, pred, spacing, tolerance_mm=0.6, surface_definition="surfel")
    assert ev.scores == case
    voxel = evaluate_case(ref, pred, spacing, tolerance_mm=0.6, dilation_mm=1.0)
    assert voxel.scores.nsd != case.nsd  # the definitions differ on this case


def test_unknown_surface_definition_is_refused():
    mask = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match="surface definition must be one of voxel, surfel, got 'mesh'"):
        case_metrics(mask, mask, (1, 1), tolerance_mm=1.0, surface_definition="mesh")


def test_evaluation_settings_carry_the_surface_definition():
    """``evaluation.surface_definition`` reaches the settings and the provenance record; anything else
    than voxel / surfel is refused naming the key."""
    from lesionbench.evaluation import Settings
    from lesionbench.evaluation.folder import EvaluationError
    from lesionbench.evaluation.provenance import settings_record

    block = {"contour_tolerance_mm": 1.0, "lesion_dilation_mm": 2.0}
    assert Settings.from_config(block, {}).surface_definition == "voxel"
    surfel = Settings.from_config(block, {}, surface_definition="surfel")
    record = settings_record(surfel)
    assert record["surface_definition"] == "surfel" and "area-weighted" in record["hd95"]
    assert settings_record(Settings.from_config(block, {}))["surface_definition"] == "voxel"
    with pytest.raises(EvaluationError, match="surface_definition: surface definition must be one of"):
        Settings.from_config(block, {}, surface_definition="mesh")


@pytest.mark.parametrize("nd", [2, 3])
def test_surfels_of_whole_label_arrays_equal_component_by_component(nd):
    """Surfels found a label array at a time equal those found from each component's boxed mask, for
    compacted, scattered (2D pixel-list) and region-cropped (3D) arrays, with small components dropped."""
    import dataclasses

    from lesionbench.metrics.parts import BoxedMasks

    rng = np.random.default_rng(20 + nd)
    for t in range(40):
        shape = tuple(int(n) for n in rng.integers(8, 60 if nd == 2 else 16, nd))
        mask = rng.random(shape) < rng.choice([0.02, 0.05, 0.3])
        spacing = tuple(float(s) for s in rng.uniform(0.3, 2.0, nd))
        parts = find_parts(mask, spacing, min_voxels=int(t % 3))
        assert isinstance(parts.masks, BoxedMasks)
        boxed = dataclasses.replace(parts, masks=list(parts.masks), _cache={})
        a, b = surfel_parts(parts), surfel_parts(boxed)
        np.testing.assert_array_equal(a.points, b.points)
        np.testing.assert_array_equal(a.owner, b.owner)
        np.testing.assert_array_equal(a.weights, b.weights)


def test_command_line_surface_option_reaches_every_row(tmp_path):
    """``lesionbench-evaluate --surface surfel`` (over the config's voxel): per_case and per_lesion hold
    the surfel values of ``evaluate_case``."""
    import pandas as pd

    from lesionbench.evaluation.cli import main
    from lesionbench.io.cases import load_case, read_meta
    from lesionbench.io.predictions import find_prediction, read_prediction
    from test_evaluation import make_dataset, write_predictions

    prepared = make_dataset(tmp_path, 2)
    preds = tmp_path / "predictions" / "toy" / "tool" / "seed0"
    write_predictions(prepared, preds, ["c0", "c1", "c2"], shift=1)
    config = tmp_path / "config.yaml"
    config.write_text(
        "datasets:\n  toy: {evaluation: {contour_tolerance_mm: 1.0, lesion_dilation_mm: 2.0}}\n"
        "evaluation: {surface_definition: voxel}\n"
    )
    out = tmp_path / "metrics"
    args = ["--predictions", str(preds), "--prepared", str(prepared), "--split", str(tmp_path / "split.csv")]
    assert main([*args, "--config", str(config), "--out", str(out), "--surface", "surfel"]) == 0
    per_case = pd.read_csv(out / "per_case.csv", dtype={"case_id": str}).set_index("case_id")
    per_lesion = pd.read_csv(out / "per_lesion.csv", dtype={"case_id": str})
    case = load_case(prepared, "c1", image=False)
    meta = read_meta(prepared, "c1")
    pred = read_prediction(preds, meta, path=find_prediction(preds, meta))
    ev = evaluate_case(case.mask, pred, case.spacing, tolerance_mm=1.0, dilation_mm=2.0, surface_definition="surfel")
    for metric in ("hd95", "asd", "nsd", "contour_f1"):
        assert per_case.loc["c1", metric] == pytest.approx(getattr(ev.scores, metric))
    rows = per_lesion[per_lesion["case_id"] == "c1"].reset_index(drop=True)
    assert rows["nsd"].tolist() == pytest.approx([r["nsd"] for r in ev.lesion_rows()])
    voxel = evaluate_case(case.mask, pred, case.spacing, tolerance_mm=1.0, dilation_mm=2.0)
    assert voxel.scores.asd != pytest.approx(ev.scores.asd)
