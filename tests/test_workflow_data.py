"""The data stage through snakemake on the tiny configuration, and the workflow's lint."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run(args, cwd=ROOT):
    return subprocess.run(SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True)


def test_data_stage_builds_the_summary(tmp_path):
    results = tmp_path / "results"
    proc = run(
        [
            "--cores",
            "2",
            "--configfile",
            "config/config.yaml",
            "tests/data/tiny.yaml",
            "--config",
            f"results={results}",
            f"figures={tmp_path / 'figures'}",
            "--",
            f"{results}/dataset_summary.csv",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = pd.read_csv(results / "dataset_summary.csv")
    assert summary["dataset"].tolist() == ["synthetic_ct", "synthetic_fundus", "synthetic_mri"]
    for split in ("train", "val", "test"):
        assert (summary[f"cases_{split}"] > 0).all()
    assert (summary["lesions_test"] > 0).all()
    assert (summary["q1_upper"] < summary["q3_upper"]).all()
    for ds in summary["dataset"]:
        for name in ("split.csv", "cases.csv", "lesions.csv", "quartiles.csv", "validation.json"):
            assert (results / "data" / ds / name).is_file()
        assert (results / "logs" / "prepare" / f"{ds}.log").is_file()
        assert (results / "benchmarks" / "prepare" / f"{ds}.tsv").is_file()
    # nothing half-written is left behind
    assert not list(results.rglob(".*.tmp*"))


def test_snakemake_lint_is_clean():
    proc = run(["--lint"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_invalid_config_is_rejected_by_the_schema(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("postprocessing: {threshold: 1.5}\n")
    proc = run(["-n", "--configfile", str(bad)])
    assert proc.returncode != 0
    assert "threshold" in proc.stdout + proc.stderr
