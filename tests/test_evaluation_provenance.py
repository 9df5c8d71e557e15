"""The provenance sidecar of a metric table: metric-code hash and evaluation settings, written atomically."""

import json

from lesionbench.evaluation import Settings, evaluate_to_files, provenance
from lesionbench.metrics import surface
from test_evaluation import make_dataset, write_predictions


def test_sidecar_records_code_and_settings(tmp_path):
    prepared = make_dataset(tmp_path, 2)
    preds = tmp_path / "pred"
    write_predictions(prepared, preds, ["c0", "c1", "c2"])
    settings = Settings(tolerance_mm=1.0, dilation_mm=2.0, threshold=0.5, min_component_voxels=3)
    evaluate_to_files(preds, prepared, tmp_path / "split.csv", tmp_path / "out" / "per_case.csv",
                      tmp_path / "out" / "per_lesion.csv", dataset="toy", model="m", seed=2, settings=settings,
                      lesions_csv=tmp_path / "lesions.csv", provenance_json=tmp_path / "out" / "provenance.json")
    record = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert (record["dataset"], record["model"], record["seed"]) == ("toy", "m", 2)
    assert record["settings"]["contour_tolerance_mm"] == 1.0
    assert record["settings"]["min_component_voxels"] == 3
    assert record["settings"]["distance_penalty"] == "image extent diagonal"
    assert record["settings"]["connectivity"] == {"2d": 8, "3d": 26}
    assert record["settings"]["border_function"] == "lesionbench.metrics.surface.border"
    assert record["settings_sha256"] == provenance.canonical_hash(record["settings"])
    for f in ("metrics/surface.py", "metrics/lesionwise.py", "postprocess.py", "components.py"):
        assert f in record["metric_code_files"]
    assert record["metric_code_sha256"] == provenance.metric_code_hash()
    assert list(tmp_path.joinpath("out").glob("*.tmp*")) == []          # nothing left from the atomic write


def test_another_tolerance_or_code_changes_the_hashes(tmp_path):
    a = provenance.evaluation_provenance(Settings(1.0, 2.0), dataset="d", model="a", seed=0)
    b = provenance.evaluation_provenance(Settings(1.5, 2.0), dataset="d", model="b", seed=0)
    c = provenance.evaluation_provenance(Settings(1.0, 2.0, penalty_mm=50.0), dataset="d", model="c", seed=0)
    assert a["metric_code_sha256"] == b["metric_code_sha256"]
    assert len({a["settings_sha256"], b["settings_sha256"], c["settings_sha256"]}) == 3
    files = provenance.metric_code_files()
    assert provenance.metric_code_hash(files) != provenance.metric_code_hash(files[:-1])
    assert surface.border.__name__ in a["settings"]["border_function"]
