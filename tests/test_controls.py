"""Controls: per-lesion perturbations (closed-form geometry), the shared detection behaviour, calibration, and
writing a data set's controls like any model's predictions."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from lesionbench.components import label_components
from lesionbench.controls import (
    ControlBuilder,
    ControlError,
    ControlSettings,
    ControlSpec,
    Lesion,
    ReferenceCase,
    build_dataset_controls,
    calibrate,
    control_specs,
    perturb,
)
from lesionbench.controls.build import core, dropped_lesions
from lesionbench.controls.dataset import CALIBRATION_COLUMNS, gather_calibration
from lesionbench.data.synthetic import irregular_blob
from lesionbench.io.atomic import write_csv
from lesionbench.io.cases import Case, save_case
from lesionbench.io.predictions import read_prediction
from lesionbench.metrics.case import case_metrics, evaluate_case


def disk(shape, centre, radius, spacing=(1.0, 1.0)):
    grid = np.indices(shape, dtype=float)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing))
    return d2 <= radius**2


def east(ndim=2):
    u = np.zeros(ndim)
    u[-1] = 1.0
    return u


# -- perturbations: closed-form geometry --------------------------------------------------------------


def test_zero_strength_is_the_reference():
    lesion = Lesion(disk((21, 21), (10, 10), 6), (1.0, 1.0))
    for name in ("offset", "smoothing", "protrusions", "fragmentation", "undersegmentation"):
        np.testing.assert_array_equal(perturb(lesion, name, 0.0, east()), lesion.mask)


def test_offset_by_whole_voxels_is_a_translation_and_spacing_aware():
    mask = disk((25, 25), (12, 12), 5)
    lesion = Lesion(mask, (1.0, 1.0))
    np.testing.assert_array_equal(perturb(lesion, "offset", 3.0, east()), np.roll(mask, 3, axis=1))
    # 4 mm along an axis of 2 mm voxels is two voxels
    wide = Lesion(mask, (1.0, 2.0))
    np.testing.assert_array_equal(perturb(wide, "offset", 4.0, east()), np.roll(mask, 2, axis=1))


@pytest.mark.parametrize("d", [1.0, 2.0, 3.0])
def test_offset_moves_hd95_by_the_offset_at_any_direction(d):
    mask = disk((41, 41), (20, 20), 10)
    lesion = Lesion(mask, (1.0, 1.0))
    angle = 0.6
    u = np.array([np.sin(angle), np.cos(angle)])
    moved = perturb(lesion, "offset", d, u)
    # a disc moved by d: every boundary point is about d from the other boundary (voxel rounding: 0.75 voxel)
    hd95 = case_metrics(mask, moved, (1.0, 1.0), tolerance_mm=1.0).hd95
    assert abs(hd95 - d) <= 0.75
    assert abs(int(moved.sum()) - int(mask.sum())) <= 0.05 * mask.sum()
    shift = np.argwhere(moved).mean(axis=0) - np.argwhere(mask).mean(axis=0)
    # linear interpolation of the signed distance then <= 0 moves voxel boundaries by the rounded shift
    np.testing.assert_allclose(shift, d * u, atol=0.5 + 1e-9)


def test_offset_in_3d_stays_in_plane():
    mask = np.zeros((5, 21, 21), bool)
    mask[1:4] = disk((21, 21), (10, 10), 5)
    lesion = Lesion(mask, (3.0, 1.0, 1.0))
    moved = perturb(lesion, "offset", 2.0, east(3))
    np.testing.assert_array_equal(moved, np.roll(mask, 2, axis=2))


def test_smoothing_rounds_the_corners_of_a_square_and_keeps_its_edges():
    mask = np.zeros((31, 31), bool)
    mask[8:23, 8:23] = True
    out = perturb(Lesion(mask, (1.0, 1.0)), "smoothing", 2.0, east())
    for corner in [(8, 8), (8, 22), (22, 8), (22, 22)]:
        assert mask[corner] and not out[corner]
    for mid in [(8, 15), (22, 15), (15, 8), (15, 22), (15, 15)]:
        assert out[mid]
    assert not (out & ~mask).any()  # a convex shape only loses its corners
    lost = mask & ~out
    assert 4 <= lost.sum() <= 40


def test_smoothing_blows_a_tiny_lesion_up_to_the_blur_size():
    mask = np.zeros((31, 31), bool)
    mask[15, 15] = True
    s = 3.0
    out = perturb(Lesion(mask, (1.0, 1.0)), "smoothing", s, east())
    # half maximum of a Gaussian: radius sqrt(2 ln 2) s = 1.18 s, area pi (1.18 s)^2 = 39 voxels
    assert 30 <= out.sum() <= 50
    np.testing.assert_allclose(np.argwhere(out).mean(axis=0), [15, 15])
    assert out[15, 15 + 3] and not out[15, 15 + 4]


def test_protrusions_removes_a_thin_spike_and_keeps_the_body():
    mask = np.zeros((31, 41), bool)
    mask[8:23, 5:20] = True  # 15 x 15 body
    mask[15, 20:36] = True  # 1-voxel-wide spike, 16 long
    out = perturb(Lesion(mask, (1.0, 1.0)), "protrusions", 1.5, east())
    assert not out[15, 22:36].any()
    assert out[10:21, 7:18].all()
    assert not (out & ~mask).any()
    hd95 = case_metrics(mask, out, (1.0, 1.0), tolerance_mm=1.0).hd95
    assert hd95 >= 8  # the spike's voxels are up to 16 voxels from the prediction


def test_fragmentation_cuts_a_disc_into_four_without_adding_voxels():
    mask = disk((41, 41), (20, 20), 10)
    out = perturb(Lesion(mask, (1.0, 1.0)), "fragmentation", 2.0, east())
    _, n = label_components(out)
    assert n == 4
    assert not (out & ~mask).any()
    # the cracks of width 2 through the centre remove the voxels with |x - 20| < 1 or |y - 20| < 1
    assert not out[20, :].any() and not out[:, 20].any()
    assert out[18, 18] and out[22, 22]


def test_undersegmentation_cuts_a_cap_of_the_given_depth_on_one_side():
    mask = disk((41, 41), (20, 20), 10)
    out = perturb(Lesion(mask, (1.0, 1.0)), "undersegmentation", 4.0, east())
    cols = np.flatnonzero(out.any(axis=0))
    assert cols.max() == 20 + 10 - 4 and cols.min() == 10  # extreme point x = 30, plane at 26; west side exact
    np.testing.assert_array_equal(out[:, :27], mask[:, :27])
    assert not out[:, 27:].any()
    hd95 = case_metrics(mask, out, (1.0, 1.0), tolerance_mm=1.0).hd95
    assert 2.5 <= hd95 <= 4.0


def test_perturbation_inputs_are_checked():
    lesion = Lesion(disk((11, 11), (5, 5), 3), (1.0, 1.0))
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(lesion, "dilation", 1.0, east())
    with pytest.raises(ValueError, match="finite number"):
        perturb(lesion, "offset", -1.0, east())
    with pytest.raises(ValueError, match="background on every side"):
        Lesion(np.ones((3, 3), bool), (1.0, 1.0))


# -- the shared detection behaviour -------------------------------------------------------------------


def test_dropped_lesions_are_deterministic_and_mostly_small():
    lesions = {(f"c{i}", 1): (1000 if i % 2 else 3) for i in range(40)}
    a = dropped_lesions(lesions, 0.25, 7, "ds")
    assert a == dropped_lesions(lesions, 0.25, 7, "ds") and len(a) == 10
    assert a != dropped_lesions(lesions, 0.25, 8, "ds")
    small = sum(lesions[k] == 3 for k in a)
    assert small >= 9  # weight 1/voxels: a 3-voxel lesion is 333 times as likely as a 1000-voxel one
    assert dropped_lesions(lesions, 0.0, 7, "ds") == set()
    with pytest.raises(ControlError, match="drop_fraction"):
        dropped_lesions(lesions, 1.0, 7, "ds")


def test_core_is_connected_deepest_and_of_the_asked_size():
    mask = np.zeros((15, 15), bool)
    mask[2:13, 2:13] = True
    depth = ndimage.distance_transform_edt(mask)
    piece = core(mask, depth, 5)
    assert piece.sum() == 5 and piece[7, 7]
    assert label_components(piece)[1] == 1


def random_cases(n_cases=6, shape=(64, 64), seed=0, ignore=False):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n_cases):
        mask = np.zeros(shape, bool)
        for r in [9, 4, 2.5, 1.5, 1.0]:
            centre = rng.uniform(12, np.asarray(shape) - 12)
            mask |= irregular_blob(shape, centre, (r, r * 1.2), rng)
        ign = None
        if ignore:
            ign = np.zeros(shape, bool)
            ign[:, :6] = True
        cases.append(ReferenceCase(f"case{i}", mask, (1.0, 1.0), ign))
    cases.append(ReferenceCase("empty", np.zeros(shape, bool), (1.0, 1.0)))
    return cases


def test_every_control_drops_the_same_lesions_and_detects_all_others():
    cases = random_cases()
    builder = ControlBuilder("ds", cases, 0.2, 3, min_component_voxels=3)
    assert len(builder.dropped) == round(0.2 * builder.n_lesions)
    for perturbation in ("offset", "smoothing", "protrusions", "fragmentation", "undersegmentation"):
        spec = ControlSpec(perturbation, perturbation, 11)
        preds = builder.predictions(spec, 2.5)
        for case, pred in zip(cases, preds):
            ev = evaluate_case(case.mask, pred, case.spacing, tolerance_mm=1.0, dilation_mm=2.0, min_component_voxels=3)
            labels, _ = label_components(case.mask)
            for row in ev.lesion_rows():
                if row["kind"] != "reference":
                    continue
                if (case.case_id, row["lesion_id"]) in builder.dropped:
                    assert not pred[labels == row["lesion_id"]].any()  # dropped: nothing predicted on it
                elif row["voxels"] >= 3:
                    assert row["detected"], (perturbation, case.case_id, row["lesion_id"])


def test_case_dice_is_the_evaluation_dice():
    cases = random_cases(ignore=True)
    builder = ControlBuilder("ds", cases, 0.1, 3, min_component_voxels=3)
    preds = builder.predictions(ControlSpec("f", "fragmentation", 1), 1.2)
    ours = builder.case_dice(preds)
    theirs = [
        evaluate_case(
            c.mask, p, c.spacing, ignore=c.ignore, tolerance_mm=1.0, dilation_mm=2.0, min_component_voxels=3
        ).scores.dice
        for c, p in zip(cases, preds)
    ]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert ours[-1] == 1.0  # the case without lesions: both empty


def test_controls_are_deterministic_and_seeded():
    cases = random_cases()
    a = ControlBuilder("ds", cases, 0.1, 3, min_component_voxels=3)
    b = ControlBuilder("ds", cases, 0.1, 3, min_component_voxels=3)
    spec = ControlSpec("offset", "offset", 5)
    for x, y in zip(a.predictions(spec, 1.7), b.predictions(spec, 1.7)):
        np.testing.assert_array_equal(x, y)
    other = a.predictions(ControlSpec("offset", "offset", 6), 1.7)
    assert any((x != y).any() for x, y in zip(a.predictions(spec, 1.7), other))
    # seed-free perturbations do not depend on the seed
    for x, y in zip(
        a.predictions(ControlSpec("s", "smoothing", 5), 1.7), a.predictions(ControlSpec("s", "smoothing", 6), 1.7)
    ):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("perturbation", ["offset", "smoothing", "protrusions", "fragmentation", "undersegmentation"])
def test_calibration_hits_the_target_dice(perturbation):
    cases = random_cases(n_cases=8, seed=1)
    builder = ControlBuilder("ds", cases, 0.1, 3, min_component_voxels=3)
    spec = ControlSpec(perturbation, perturbation, 2)
    cal = calibrate(builder, spec, 0.85, 0.002)
    assert cal.within_tolerance and abs(cal.dice - 0.85) <= 0.002
    assert cal.dice == pytest.approx(builder.mean_dice(spec, cal.strength_mm), abs=1e-12)
    assert cal.strength_mm > 0


def test_calibration_flags_an_unreachable_target(caplog):
    cases = random_cases()
    builder = ControlBuilder("ds", cases, 0.5, 3, min_component_voxels=3)
    spec = ControlSpec("o", "offset", 1)
    cal = calibrate(builder, spec, 0.99, 0.002)  # the shared drop alone is below 0.99
    assert cal.strength_mm == 0.0 and not cal.within_tolerance
    assert cal.dice == pytest.approx(builder.mean_dice(spec, 0.0)) and cal.dice < 0.99
    assert "at strength 0" in caplog.text and "below the target" in caplog.text
    with pytest.raises(ControlError, match="dice_target"):
        calibrate(builder, spec, 1.0, 0.002)


# -- configuration and writing ------------------------------------------------------------------------

SETTINGS = ControlSettings(
    dice_target=0.85,
    tolerance=0.002,
    drop_fraction=0.1,
    seed=4,
    perturbations=("offset", "smoothing", "protrusions", "fragmentation", "undersegmentation"),
    negative="offset",
)


def test_control_specs_positive_then_negative_pair():
    specs = control_specs(SETTINGS)
    assert [s.name for s in specs] == [
        "offset",
        "smoothing",
        "protrusions",
        "fragmentation",
        "undersegmentation",
        "replicate_a",
        "replicate_b",
    ]
    assert [s.seed for s in specs[-2:]] == [5, 6] and {s.perturbation for s in specs[-2:]} == {"offset"}
    with pytest.raises(ControlError, match="depends on its seed"):
        control_specs(ControlSettings(**{**SETTINGS.__dict__, "negative": "smoothing"}))


def test_build_dataset_controls_writes_predictions_and_calibration(tmp_path):
    cases = random_cases(n_cases=5, seed=2)
    prepared = tmp_path / "prepared"
    for c in cases:
        save_case(
            Case(
                c.case_id, np.zeros((1,) + c.mask.shape, np.float32), c.mask.astype(np.uint8), c.spacing, dataset="ds"
            ),
            prepared,
        )
    split = tmp_path / "split.csv"
    write_csv(
        pd.DataFrame({"case_id": [c.case_id for c in cases] + ["train0"], "split": ["test"] * len(cases) + ["train"]}),
        split,
    )
    names = [s.name for s in control_specs(SETTINGS)]
    outputs = {n: tmp_path / "controls" / n / "seed0" for n in names}
    table = build_dataset_controls(
        prepared, split, outputs, dataset="ds", settings=SETTINGS, min_component_voxels=3, threshold=0.5
    )
    assert list(table.columns) == CALIBRATION_COLUMNS and list(table.control) == names
    assert (table.dice - 0.85).abs().max() <= 0.002 and table.within_tolerance.all()
    assert set(table.role) == {"positive", "negative"}
    from lesionbench.io.cases import read_meta

    builder = ControlBuilder("ds", cases, 0.1, 4, min_component_voxels=3)
    for row in table.itertuples():
        spec = next(s for s in control_specs(SETTINGS) if s.name == row.control)
        expected = builder.predictions(spec, row.strength_mm)
        for case, exp in zip(cases, expected):
            np.testing.assert_array_equal(read_prediction(outputs[row.control], read_meta(prepared, case.case_id)), exp)
    write_csv(table, tmp_path / "a.csv")
    gathered = gather_calibration([tmp_path / "a.csv"])
    assert list(gathered.control[:5]) == sorted(names[:5]) and list(gathered.role[-2:]) == ["negative"] * 2
    with pytest.raises(ControlError, match="configured controls"):
        build_dataset_controls(
            prepared,
            split,
            {"offset": tmp_path / "x"},
            dataset="ds",
            settings=SETTINGS,
            min_component_voxels=3,
            threshold=0.5,
        )
