"""The seven sanity checks: all pass on consistent inputs, and each fails on a crafted defect."""

import json
from pathlib import Path

import pandas as pd

import study_tables
from lesionbench.evaluation import Settings
from lesionbench.io.atomic import write_csv
from lesionbench.metrics import surface
from lesionbench.stats import sanity

BASE = Settings(tolerance_mm=1.0, dilation_mm=2.0)


def inputs(tmp_path, settings=None, name="toy", edge_rule="test_quartiles"):
    data = study_tables.make_dataset(name, n_cases=10, models=("a", "b", "c"), seed=3, edge_rule=edge_rule)
    paths = study_tables.write_dataset(data, tmp_path, settings=settings)
    q = pd.read_csv(paths["quartiles"][0])
    small = pd.DataFrame({"dataset": [name] * 3, "q1_upper_bound": [float(q.q25.iloc[0])] * 3})
    return paths, small


def run(paths, small, min_lesions=1):
    table = sanity.sanity_checks(
        paths["per_case"],
        paths["per_lesion"],
        paths["split"],
        paths["lesions"],
        paths["quartiles"],
        paths["provenance"],
        small,
        min_lesions,
    )
    assert list(table.columns) == sanity.SANITY_COLUMNS
    assert table.check.tolist() == list(sanity.CHECKS)
    return table.set_index("check")


def test_consistent_inputs_pass_every_check(tmp_path):
    t = run(*inputs(tmp_path))
    assert (t.status == "pass").all(), t.figures.to_dict()
    assert "3 tables; metric code" in t.loc["metric_code", "figures"]
    assert "3 per-case tables x 10 test cases" in t.loc["completeness", "figures"]
    assert "definition check 2D ok, 3D ok" in t.loc["borders", "figures"]


def test_model_evaluated_with_another_tolerance_fails_metric_code(tmp_path):
    other = Settings(tolerance_mm=2.0, dilation_mm=2.0)
    t = run(*inputs(tmp_path, settings={("a", 0): BASE, ("b", 0): other, ("c", 0): BASE}))
    assert t.loc["metric_code", "status"] == "fail"
    assert "b/seed0 (contour_tolerance_mm=2.0)" in t.loc["metric_code", "figures"]
    assert t.loc["postprocessing", "status"] == "pass"


def test_other_threshold_fails_postprocessing(tmp_path):
    other = Settings(tolerance_mm=1.0, dilation_mm=2.0, threshold=0.4)
    t = run(*inputs(tmp_path, settings={("a", 0): BASE, ("b", 0): BASE, ("c", 0): other}))
    assert t.loc["postprocessing", "status"] == "fail"
    assert "c/seed0 (threshold 0.4" in t.loc["postprocessing", "figures"]


def test_dropped_case_and_dropped_lesion_fail_completeness(tmp_path):
    paths, small = inputs(tmp_path)
    pc = pd.read_csv(paths["per_case"][1], dtype={"case_id": str})
    write_csv(pc[pc.case_id != "case003"], paths["per_case"][1])
    t = run(paths, small)
    assert t.loc["completeness", "status"] == "fail"
    assert "missing cases ['case003']" in t.loc["completeness", "figures"]

    paths, small = inputs(tmp_path / "second")
    pl = pd.read_csv(paths["per_lesion"][2], dtype={"case_id": str})
    first = pl[pl.kind == "reference"].index[0]
    write_csv(pl.drop(index=first), paths["per_lesion"][2])
    t = run(paths, small)
    assert t.loc["completeness", "status"] == "fail"
    assert "lesions differ from" in t.loc["completeness", "figures"]


def test_tampered_quartiles_fail(tmp_path):
    paths, small = inputs(tmp_path)
    q = pd.read_csv(paths["quartiles"][0])
    write_csv(q.assign(q25=q.q25 * 1.5), paths["quartiles"][0])
    assert run(paths, small).loc["quartiles", "status"] == "fail"

    paths, small = inputs(tmp_path / "second")
    small.loc[0, "q1_upper_bound"] *= 2  # the small-lesion table used other edges
    t = run(paths, small)
    assert t.loc["quartiles", "status"] == "fail"
    assert "small-lesion table Q1 upper bound" in t.loc["quartiles", "figures"]


def test_quartiles_follow_the_stated_edge_rule(tmp_path):
    paths, small = inputs(tmp_path, edge_rule="train_quartiles")
    t = run(paths, small)
    assert t.loc["quartiles", "status"] == "pass" and "rule train_quartiles" in t.loc["quartiles", "figures"]
    # training-quartile edges relabelled as test quartiles no longer follow from lesions.csv
    q = pd.read_csv(paths["quartiles"][0])
    write_csv(q.assign(edge_rule="test_quartiles"), paths["quartiles"][0])
    assert run(paths, small).loc["quartiles", "status"] == "fail"


def test_small_lesion_counts(tmp_path):
    paths, small = inputs(tmp_path)
    t = run(paths, small, min_lesions=1000)
    assert t.loc["small_lesions", "status"] == "fail"
    # the synthetic data set (seed 3): 12 Q1 lesions, 2 of them found by all three models
    assert t.loc["small_lesions", "figures"] == "12 Q1 lesions, 2 common Q1 lesions; minimum 1000"
    assert run(paths, small, min_lesions=12).loc["small_lesions", "status"] == "warn"
    assert run(paths, small, min_lesions=2).loc["small_lesions", "status"] == "pass"


def test_other_connectivity_and_border_function_fail(tmp_path):
    paths, small = inputs(tmp_path)
    sidecar = Path(paths["provenance"][0])
    record = json.loads(sidecar.read_text())
    record["settings"]["connectivity"] = {"2d": 4, "3d": 6}
    record["settings"]["border_function"] = "somewhere.else.border"
    sidecar.write_text(json.dumps(record))
    t = run(paths, small)
    assert t.loc["connectivity", "status"] == "fail" and "a/seed0" in t.loc["connectivity", "figures"]
    assert t.loc["borders", "status"] == "fail" and "2 distinct in the study" in t.loc["borders", "figures"]


def test_border_function_off_its_definition_fails(tmp_path, monkeypatch):
    paths, small = inputs(tmp_path)
    real = surface.border
    monkeypatch.setattr(surface, "border", lambda m: real(m) if m.ndim == 2 else m.astype(bool))
    t = run(paths, small)
    assert t.loc["borders", "status"] == "fail"
    assert "2D ok, 3D FAILED" in t.loc["borders", "figures"]


def test_missing_sidecar_fails_metric_code(tmp_path):
    paths, small = inputs(tmp_path)
    paths["provenance"] = paths["provenance"][:2]
    t = run(paths, small)
    assert t.loc["metric_code", "status"] == "fail"
    assert "no provenance for ['c/seed0']" in t.loc["metric_code", "figures"]
