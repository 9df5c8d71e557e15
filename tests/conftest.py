"""Shared test setup: headless plotting, single-threaded numerics, and one complete tiny run of the study.

The tiny run (tests/data/tiny.yaml over config/config.yaml) happens once per session in a private copy of
the workflow, so the repository's results/, .snakemake/ and code are never touched; the end-to-end and
partial-rerun tests all read it.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
WORKFLOW_PARTS = ("Snakefile", "workflow", "config", "scripts", "src", "envs")


def copy_workflow(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, target / part)
    return target


def snakemake(workdir, *args, configfiles=(), timeout=1800):
    """snakemake in a workflow copy on the tiny configuration, with the copy's library first on the path."""
    env = dict(
        os.environ,
        PYTHONPATH=str(workdir / "src"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    files = [str(workdir / "config" / "config.yaml"), str(TINY), *map(str, configfiles)]
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--configfile", *files],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def planned_jobs(proc):
    """{rule: count} from the 'Job stats' table of a dry run; {} when nothing is to be done."""
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = re.search(r"^Job stats:\n(.*?)^total\s+\d+$", out, flags=re.M | re.S)
    assert table, out[-4000:]
    rows = [line.split() for line in table.group(1).splitlines()[2:] if line.strip()]
    return {rule: int(count) for rule, count in rows if rule != "all"}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished tiny run and its HTML report in a private workflow copy: (the copy's folder, seconds)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny") / "lesionbench")
    start = time.monotonic()
    proc = snakemake(workdir, "--cores", str(os.cpu_count() or 1))
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    report = snakemake(workdir, "--report", str(workdir / "results" / "report.html"))
    assert report.returncode == 0, report.stdout[-4000:] + report.stderr[-4000:]
    assert planned_jobs(snakemake(workdir, "-n")) == {}, "a complete run must leave nothing to do"
    return workdir, seconds
