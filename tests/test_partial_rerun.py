"""Changing one step re-runs that step and what follows it, nothing before it.

The session's complete run of the tiny configuration (conftest `tiny_run`, in a private copy of the
workflow, so the repository's results/ and code are never touched) is shared by the checks below; each check then asks
snakemake for a dry run and compares the planned jobs with the stage that was changed:
- a metric setting (a data set's contour tolerance): evaluation of that data set and what reads it,
  no data preparation, training or prediction;
- the figure code: only figure jobs;
- the size-bin rule (stratification.edges): the lesion table and what reads it, never training or prediction;
- library code: the prediction reader re-runs the evaluation, the validation code the validation only.
"""

import os

import pytest
import yaml

from conftest import TINY, planned_jobs, snakemake

# Stages by rule name: what must never re-run after a metric or figure change.
UPSTREAM_RULES = {"acquire", "split", "prepare", "lesions", "validate_data", "dataset_summary", "train", "predict"}

pytestmark = pytest.mark.slow


def say(capsys, text):
    """Print into the test output even while pytest captures it."""
    with capsys.disabled():
        print(f"\n[rerun] {text}", flush=True)


def merged(*configs):
    """Later configs layered over earlier ones, as snakemake layers --configfile files."""
    out = {}
    for config in configs:
        for key, value in (config or {}).items():
            both_dicts = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merged(out[key], value) if both_dicts else value
    return out


def jobs_after_editing(completed_run, relative: str) -> dict:
    """The jobs a dry run plans after appending a comment to the library file ``relative`` (under
    src/lesionbench) of the completed run; the file and its mtime are restored afterwards."""
    module = completed_run / "src" / "lesionbench" / relative
    text, stat = module.read_text(), module.stat()
    try:
        module.write_text(text + "\n# edited by the partial-rerun test\n")
        return planned_jobs(snakemake(completed_run, "-n"))
    finally:
        module.write_text(text)
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_metric_setting_reruns_evaluation_and_what_follows_only(tiny_run, tmp_path, capsys):
    completed_run, seconds = tiny_run
    say(capsys, f"complete tiny run (shared by the checks): {seconds:.0f} s")
    config = merged(
        yaml.safe_load((completed_run / "config" / "config.yaml").read_text()), yaml.safe_load(TINY.read_text())
    )
    dataset = sorted(config["datasets"])[0]
    tolerance = config["datasets"][dataset]["evaluation"]["contour_tolerance_mm"]
    change = tmp_path / "tolerance.yaml"
    change.write_text(yaml.safe_dump({"datasets": {dataset: {"evaluation": {"contour_tolerance_mm": tolerance * 2}}}}))

    jobs = planned_jobs(snakemake(completed_run, "-n", configfiles=[change]))
    say(capsys, f"{dataset} contour_tolerance_mm {tolerance} -> {tolerance * 2} plans {jobs}")
    assert not UPSTREAM_RULES & set(jobs), f"upstream jobs planned: {UPSTREAM_RULES & set(jobs)}"
    # only the changed data set is evaluated again: one job per model x seed
    assert jobs.get("evaluate") == len(config["models"]) * len(config["seeds"]), jobs
    # what reads the metric tables follows: the study tables and their figures ...
    assert any(not rule.startswith("figure_") and rule != "evaluate" for rule in jobs), jobs
    assert any(rule.startswith("figure_") for rule in jobs), jobs
    # ... but not the training curves, which read only the training logs
    assert "figure_training_curves" not in jobs, jobs


def test_figure_code_reruns_figures_only(tiny_run, capsys):
    completed_run, _ = tiny_run
    everything = planned_jobs(snakemake(completed_run, "-n", "--forceall"))
    figures = {rule: n for rule, n in everything.items() if rule.startswith("figure_")}
    assert figures, everything
    jobs = jobs_after_editing(completed_run, "plots/style.py")
    say(capsys, f"editing src/lesionbench/plots/style.py (used by every figure) plans {jobs}")
    # every figure job and nothing else
    assert jobs == figures, jobs
    # and the copy is back to a finished state
    assert planned_jobs(snakemake(completed_run, "-n")) == {}


def test_prediction_io_code_reruns_evaluation(tiny_run, capsys):
    """io/predictions.py reads every prediction the evaluation scores: editing it re-plans every evaluate
    job (its rule tracks the script's import closure), and never training."""
    completed_run, _ = tiny_run
    everything = planned_jobs(snakemake(completed_run, "-n", "--forceall"))
    jobs = jobs_after_editing(completed_run, "io/predictions.py")
    say(capsys, f"editing src/lesionbench/io/predictions.py plans {jobs}")
    assert jobs.get("evaluate") == everything["evaluate"], jobs
    assert not {"acquire", "split", "prepare", "lesions", "train"} & set(jobs), jobs
    assert planned_jobs(snakemake(completed_run, "-n")) == {}


def test_validation_code_reruns_validation_and_never_the_preparation(tiny_run, capsys):
    """data/checks.py holds the checkpoint checks: editing it re-plans every validate_data job (and what reads
    their reports), never acquire, prepare or training. Each data rule's script imports only its own step
    module (lesionbench.data.steps), so no rule tracks another stage's code."""
    completed_run, _ = tiny_run
    everything = planned_jobs(snakemake(completed_run, "-n", "--forceall"))
    jobs = jobs_after_editing(completed_run, "data/checks.py")
    say(capsys, f"editing src/lesionbench/data/checks.py plans {jobs}")
    assert jobs.get("validate_data") == everything["validate_data"], jobs
    assert not {"acquire", "split", "prepare", "lesions", "train", "predict", "evaluate"} & set(jobs), jobs
    assert planned_jobs(snakemake(completed_run, "-n")) == {}


def test_size_bin_rule_reruns_the_lesion_stage_and_statistics_only(tiny_run, tmp_path, capsys):
    completed_run, _ = tiny_run
    change = tmp_path / "bins.yaml"
    change.write_text(yaml.safe_dump({"stratification": {"edges": [0.001, 0.005, 0.02]}}))
    jobs = planned_jobs(snakemake(completed_run, "-n", configfiles=[change]))
    say(capsys, f"stratification.edges -> fixed [0.001, 0.005, 0.02] plans {jobs}")
    assert "lesions" in jobs and "model_comparisons" in jobs and "size_stratified_metrics" in jobs, jobs
    assert not {"acquire", "split", "prepare", "train", "predict"} & set(jobs), jobs
