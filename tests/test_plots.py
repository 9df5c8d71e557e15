"""Every figure function writes a real, non-blank PNG from small inputs; the qualitative selection picks the
lesion with near-equal Dice and the largest HD95 gap."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import study_tables
from lesionbench.io.cases import Case, save_case
from lesionbench.io.predictions import write_prediction
from lesionbench.plots import comparison, qualitative, training
from lesionbench.plots import ranking as ranking_plot
from lesionbench.stats import aggregate, overall, ranking, strata


def assert_png(path, min_size=(400, 200)):
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        pixels = np.asarray(im.convert("L"), float)
    assert pixels.std() > 5.0  # not a blank canvas
    assert (pixels < 128).mean() > 0.005  # some dark ink (text, lines)


@pytest.fixture(scope="module")
def study():
    sums = {
        n: strata.case_sums(study_tables.to_tables(study_tables.make_dataset(n, n_cases=12, seed=i)))
        for i, n in enumerate(("alpha", "beta"))
    }
    stratified = aggregate.size_stratified_metrics(sums)
    return {
        "overall": overall.overall_metrics(sums, 50, 1, 0.95),
        "stratified": stratified,
        "small": aggregate.small_lesion_metrics(stratified),
        "ranking": ranking.ranking_reversals(aggregate.ranking_estimates(sums)),
    }


def test_overall_vs_small_lesion(study, tmp_path):
    comparison.overall_vs_small_lesion(study["overall"], study["small"], tmp_path / "o.png")
    assert_png(tmp_path / "o.png", (1500, 1400))


def test_overall_vs_small_lesion_without_common_lesions(study, tmp_path):
    small = study["small"].copy()
    common = small.lesion_set == "common"
    small.loc[common, "value"] = np.nan  # no lesion detected by every model
    small.loc[common, "n_lesions"] = 0
    comparison.overall_vs_small_lesion(study["overall"], small, tmp_path / "o.png")
    assert_png(tmp_path / "o.png", (1500, 1400))


def test_quartile_disagreement(study, tmp_path):
    comparison.quartile_disagreement(study["stratified"], tmp_path / "q.png")
    assert_png(tmp_path / "q.png", (1000, 800))
    v = study["stratified"]
    for lesion_set, metric in (("common", "hd95"), ("all", "lesion_recall")):
        spread = comparison.quartile_spread(v, (metric,), lesion_set).set_index(["dataset", "quartile", "metric"])
        q1 = v[(v.dataset == "alpha") & (v.lesion_set == lesion_set) & (v.quartile == "Q1") & (v.metric == metric)]
        assert spread.loc[("alpha", "Q1", metric), "spread"] == pytest.approx(q1.value.max() - q1.value.min())
        assert spread.loc[("alpha", "Q1", metric), "n_lesions"] == q1.n_lesions.min()
    # the common set's HD95 spread is a delineation spread: far below the all-lesion one (misses = penalty)
    common = comparison.quartile_spread(v, ("hd95",), "common").set_index(["dataset", "quartile"])["spread"]
    every = comparison.quartile_spread(v, ("hd95",), "all").set_index(["dataset", "quartile"])["spread"]
    assert common.loc[("alpha", "Q1")] < every.loc[("alpha", "Q1")]


def test_relative_spread():
    assert comparison.relative_spread([1.0, 3.0]) == pytest.approx(1.0)
    assert comparison.relative_spread([0.0, 0.0]) == 0.0


def test_ranking_reversal_matrix(study, tmp_path):
    ranking_plot.ranking_reversal_matrix(study["ranking"], tmp_path / "r.png")
    assert_png(tmp_path / "r.png", (1500, 400))


def test_training_curves(tmp_path):
    paths = []
    for i, model in enumerate(("unet", "resunet")):
        for seed in (0, 1):
            p = tmp_path / "models" / "toy" / model / f"seed{seed}" / "train_log.csv"
            p.parent.mkdir(parents=True)
            e = np.arange(1, 6)
            pd.DataFrame(
                {
                    "epoch": e,
                    "train_loss": 1 / e + i,
                    "val_dice": 0.5 + 0.05 * e - 0.01 * seed,
                    "lr": 1e-3 / e,
                    "seconds": 2.0,
                }
            ).to_csv(p, index=False)
            paths.append(p)
    logs = training.read_train_logs(paths)
    assert sorted(logs) == [("resunet", 0), ("resunet", 1), ("unet", 0), ("unet", 1)]
    training.training_curves(logs, "toy", tmp_path / "t.png")
    assert_png(tmp_path / "t.png", (1500, 400))


def test_training_log_missing_column(tmp_path):
    p = tmp_path / "models" / "toy" / "unet" / "seed0" / "train_log.csv"
    p.parent.mkdir(parents=True)
    pd.DataFrame({"epoch": [1], "train_loss": [1.0]}).to_csv(p, index=False)
    with pytest.raises(ValueError, match=r"train_log.csv: missing columns \['val_dice', 'lr', 'seconds'\]"):
        training.read_train_logs([p])


# --- qualitative examples -------------------------------------------------------------------------------


def _blob(shape, centre, radius):
    grid = np.indices(shape)
    return (sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2).astype(np.uint8)


def _qualitative_inputs(root):
    """A 2D RGB data set and a 3D data set, each: two cases, small + large lesions, two models."""
    paths = {k: [] for k in ("per_case", "per_lesion", "lesions", "quartiles", "prepared", "predictions")}
    rng = np.random.default_rng(0)
    for name, shape, spacing in (("fundus", (64, 64), (0.5, 0.5)), ("mri", (7, 40, 40), (3.0, 1.0, 1.0))):
        prepared = root / "data" / name / "prepared"
        lesions, rows = [], {("good", 0): [], ("shaky", 0): []}
        for case_id in ("c1", "c2"):
            small_c = (12, 12) if len(shape) == 2 else (3, 12, 12)
            big_c = (40, 44) if len(shape) == 2 else (3, 28, 28)
            mask = _blob(shape, small_c, 2)
            if len(shape) == 2:
                mask = np.maximum(mask, _blob(shape, big_c, 6))
            else:  # a flat large lesion on slices 3-4 only, so the small one (slices 1-5) is labelled first
                mask[3:5] = np.maximum(mask[3:5], _blob(shape[1:], big_c[1:], 6))
            channels = 3 if len(shape) == 2 else 1
            image = rng.normal(0, 1, (channels,) + shape).astype(np.float32) + mask
            save_case(Case(case_id, image, mask, spacing, dataset=name), prepared)
            meta = {
                "case_id": case_id,
                "ndim": len(shape),
                "shape": list(shape),
                "spacing": list(spacing),
                "axis_order": None,
                "affine": None,
            }
            shifted = np.roll(mask, 1, axis=-1)
            ragged = np.maximum(mask, _blob(shape, tuple(c + 3 for c in small_c[:-1]) + (small_c[-1] + 3,), 2))
            for model, pred in (("good", shifted), ("shaky", ragged)):
                write_prediction(pred, meta, root / "predictions" / name / model / "seed0")
            plane = shape[-1] * shape[-2]
            for lid, (r, far) in enumerate(((2, 9.0), (6, 1.0)), start=1):
                size = int(_blob(shape[-2:], small_c[-2:] if lid == 1 else big_c[-2:], r).sum()) / plane
                lesions.append((case_id, lid, size))
                gap = 0.01 if case_id == "c1" else 0.2  # c1's small lesion: equal Dice, far HD95
                rows[("good", 0)].append(
                    {
                        "case_id": case_id,
                        "kind": "reference",
                        "lesion_id": lid,
                        "detected": True,
                        "dice": 0.7,
                        "hd95": 1.0 + 0.1 * lid,
                    }
                )
                rows[("shaky", 0)].append(
                    {
                        "case_id": case_id,
                        "kind": "reference",
                        "lesion_id": lid,
                        "detected": True,
                        "dice": 0.7 - gap,
                        "hd95": 1.0 + far,
                    }
                )
        data = study_tables.dataset_from_rows(
            name, ["c1", "c2"], lesions, {("good", 0): {}, ("shaky", 0): {"c1": {"dice": 0.9}}}, rows
        )
        written = study_tables.write_dataset(data, root)
        for key in ("per_case", "per_lesion", "lesions", "quartiles"):
            paths[key] += written[key]
        paths["prepared"].append(str(prepared))
        paths["predictions"] += [str(root / "predictions" / name / m / "seed0") for m in ("good", "shaky")]
    return paths


def test_choose_examples_prefers_equal_dice_and_far_hd95(tmp_path):
    paths = _qualitative_inputs(tmp_path)
    out = tmp_path / "qual.png"
    examples = qualitative.qualitative_figure(
        paths["per_case"],
        paths["per_lesion"],
        paths["lesions"],
        paths["quartiles"],
        paths["prepared"],
        paths["predictions"],
        out,
        n_examples=1,
    )
    assert [(e.dataset, e.case_id, e.lesion_id) for e in examples] == [("fundus", "c1", 1), ("mri", "c1", 1)]
    # the top two models by mean case Dice, best first ('good' has Dice 1.0 in every case)
    assert all((e.pair_first, e.pair_second) == ("good", "shaky") for e in examples)
    assert examples[0].metrics_b["hd95"] == pytest.approx(10.0) and examples[0].metrics_a["hd95"] == 1.1
    assert_png(out, (800, 600))


def test_volume_example_uses_the_largest_slice(tmp_path):
    paths = _qualitative_inputs(tmp_path)
    ex = qualitative.Example("mri", "c1", 1, 0.01, "good", "shaky", {}, {})
    preds = {m: str(tmp_path / "predictions" / "mri" / m / "seed0") for m in ("good", "shaky")}
    _image, _ref, lesion, _pa, _pb, spacing, k = qualitative.load_example_slice(ex, paths["prepared"][1], preds)
    assert k == 3 and lesion.shape == (40, 40) and spacing == (1.0, 1.0)
    assert lesion.sum() == _blob((40, 40), (12, 12), 2).sum()


def test_no_candidate_gives_a_placeholder_figure(tmp_path):
    qualitative.render_examples([], {}, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 1000


def test_outline_segments_trace_pixel_borders():
    single = qualitative.outline_segments(np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]]))
    assert len(single) == 4
    assert sorted(map(tuple, single.reshape(-1, 2).tolist())) == sorted(
        [(0.5, 0.5), (1.5, 0.5), (0.5, 1.5), (1.5, 1.5)] * 2
    )
    bar = qualitative.outline_segments(np.array([[1, 1, 0]]))  # touches the image border
    assert len(bar) == 6
    assert len(qualitative.outline_segments(np.zeros((3, 3)))) == 0


def test_one_model_gives_a_placeholder_not_an_error(study, tmp_path):
    one = study["stratified"][study["stratified"].model == study["stratified"].model.min()]
    comparison.quartile_disagreement(one, tmp_path / "q1.png")
    assert (tmp_path / "q1.png").stat().st_size > 1000


def test_choose_examples_rules():
    """Near-equal Dice wins over a larger HD95 gap with unequal Dice; merged lesions (identical scores in one
    case) and lesions with equal HD95 are never chosen."""
    ref = pd.DataFrame(
        {
            "case_id": ["a", "a", "b", "c", "c"],
            "lesion_id": [1, 2, 1, 1, 2],
            "size_fraction": [0.001, 0.001, 0.001, 0.001, 0.001],
        }
    )
    edges = {"q25": 0.002, "q50": 0.003, "q75": 0.004}
    per_case = pd.DataFrame({"model": ["m1", "m2", "m3"], "dice": [0.9, 0.8, 0.1]})

    def rows(model, values):
        return [
            {
                "model": model,
                "case_id": c,
                "lesion_id": i,
                "kind": "reference",
                "detected": True,
                "dice": d,
                "iou": d,
                "hd95": h,
                "asd": h,
                "contour_f1": d,
                "nsd": d,
            }
            for (c, i), (d, h) in values.items()
        ]

    lesions = pd.DataFrame(
        rows(
            "m1",
            {
                ("a", 1): (0.7, 1.0),
                ("a", 2): (0.7, 1.0),
                ("b", 1): (0.7, 1.0),
                ("c", 1): (0.8, 1.0),
                ("c", 2): (0.6, 2.0),
            },
        )
        + rows(
            "m2",
            {
                ("a", 1): (0.7, 9.0),
                ("a", 2): (0.7, 9.0),
                ("b", 1): (0.68, 4.0),
                ("c", 1): (0.3, 20.0),
                ("c", 2): (0.6, 2.0),
            },
        )
    )
    chosen = qualitative.choose_examples("d", per_case, lesions, ref, edges, n_examples=3)
    assert [(e.case_id, e.lesion_id) for e in chosen] == [("b", 1)]
    assert (chosen[0].pair_first, chosen[0].pair_second) == ("m1", "m2")
    assert chosen[0].metrics_b["hd95"] == 4.0
    assert chosen[0].near_equal_dice


def test_ranking_stability_blob_plot(tmp_path):
    from lesionbench.plots import stability as stability_plot
    from lesionbench.stats import comparisons

    sums = {
        n: strata.case_sums(study_tables.to_tables(study_tables.make_dataset(n, n_cases=12, seed=i)))
        for i, n in enumerate(("alpha", "beta"))
    }
    table = comparisons.model_comparisons(sums, 60, 1, 0.95).stability
    stability_plot.ranking_stability_figure(table, tmp_path / "s.png")
    assert_png(tmp_path / "s.png", (1500, 900))
    # a table with none of the plotted settings gives a placeholder, not an error
    other = table[table.metric == "fp_per_case"]
    stability_plot.ranking_stability_figure(other, tmp_path / "p.png")
    assert_png(tmp_path / "p.png", (300, 100))


def test_choose_examples_refuses_lesions_a_model_scores_dice_zero():
    """A lesion counts as delineated only when both models detect it with Dice > 0: a detected hit with
    Dice 0 (inside the dilation, no overlap) or a miss shows detection, not boundary quality."""
    ref = pd.DataFrame({"case_id": ["a", "b", "c"], "lesion_id": [1, 1, 1], "size_fraction": [0.001] * 3})
    edges = {"q25": 0.002, "q50": 0.003, "q75": 0.004}
    per_case = pd.DataFrame({"model": ["m1", "m2"], "dice": [0.9, 0.8]})
    scores = {  # (case) -> (m1 (detected, dice, hd95), m2 (detected, dice, hd95))
        "a": ((True, 0.0, 30.0), (True, 0.0, 5.0)),  # both Dice 0, far apart in HD95
        "b": ((True, 0.6, 1.0), (False, 0.0, 50.0)),  # m2 misses it
        "c": ((True, 0.6, 1.0), (True, 0.58, 3.0)),  # both delineate
    }
    lesions = pd.DataFrame(
        [
            {"model": m, "case_id": c, "lesion_id": 1, "kind": "reference", "detected": det, "dice": d, "iou": d}
            | {"hd95": h, "asd": h, "contour_f1": d, "nsd": d}
            for c, both in scores.items()
            for m, (det, d, h) in zip(("m1", "m2"), both)
        ]
    )
    chosen = qualitative.choose_examples("d", per_case, lesions, ref, edges, n_examples=3)
    assert [(e.case_id, e.metrics_a["dice"], e.metrics_b["dice"]) for e in chosen] == [("c", 0.6, 0.58)]
    only_zero = lesions[lesions.case_id == "a"]
    assert qualitative.choose_examples("d", per_case, only_zero, ref, edges) == []
