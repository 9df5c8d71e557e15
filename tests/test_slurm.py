"""The tiny configuration end to end through the slurm profile, on a single-node SLURM cluster that the
test brings up on this machine (tests/slurm/local_cluster.sh) and stops again by PID.

The cluster is real SLURM 22.05 (slurmctld, slurmd, MUNGE); every job goes through sbatch and runs
under srun, exactly as on a cluster. What differs from workflow/profiles/slurm is only what this one
small node cannot give, and the test prints it:
- GPUs: the node has none. It declares two stand-in GPUs (GRES backed by /dev/null) so that the
  profile's `gpu: 1` requests (sbatch --gpus=1 --cpus-per-gpu=N) are scheduled as on a GPU node;
  PyTorch finds no CUDA device there and trains on the CPU (config `device: auto`).
- sizes: per-job memory, CPUs per GPU and wall time are capped to the node (2 CPUs here).
- account and partition are left out (the node has one default partition and no accounting).
- status polling is fast (seconds instead of 40 s) and latency-wait short, to keep the run short.

It runs only when asked (`make test-cluster`, which sets LESIONBENCH_CLUSTER_TEST=1; CI runs it after
`make test`). Without root, or without SLURM and apt-get to install it, it is skipped and says why.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from conftest import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "slurm" / "local_cluster.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
TINY = ROOT / "tests" / "data" / "tiny.yaml"
# What a run needs of the project; results/, figures/ and .snakemake/ are created in the copy.
STAND_IN_GPUS = 2  # two training jobs at once on the two CPUs

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def say(request, text):
    """Print into the test output even while pytest captures it."""
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\n[slurm] {text}", flush=True)


def cluster(*args, timeout=300):
    env = dict(os.environ, LOCAL_CLUSTER_GPUS=str(STAND_IN_GPUS), PYTHON=sys.executable)
    return subprocess.run(["bash", str(CLUSTER), *args], capture_output=True, text=True, timeout=timeout, env=env)


def configfiles(workdir):
    """The default run with the tiny configuration layered on top (a --configfile replaces the default)."""
    return [str(workdir / "config" / "config.yaml"), str(TINY)]


def fit_profile_to_node(profile, cpus):
    """The slurm profile with the changes a small test node needs; returns (profile, changes)."""
    limits = {"mem_mb": 2000, "runtime": 15, "cpus_per_gpu": 1, "cpus_per_task": cpus}
    dropped = ("slurm_account", "slurm_partition", "gpu_model", "constraint", "qos")
    capped, removed = {}, {}
    # one dict per rule (YAML anchors in the profile share them)
    sections = {"default-resources": dict(profile.get("default-resources") or {})}
    sections.update({rule: dict(res) for rule, res in (profile.get("set-resources") or {}).items()})
    for where, resources in sections.items():
        for key in list(resources):
            if key in dropped:
                removed.setdefault(key, []).append(where)
                del resources[key]
            elif key in limits and resources[key] > limits[key]:
                capped.setdefault(key, []).append(f"{where} {resources[key]}")
                resources[key] = limits[key]
    profile["default-resources"] = sections.pop("default-resources")
    profile["set-resources"] = sections
    changes = [f"{key} capped at {limits[key]}: " + ", ".join(where) for key, where in capped.items()]
    changes += [f"{key} left out: " + ", ".join(where) for key, where in removed.items()]
    fast = {
        "slurm-init-seconds-before-status-checks": 2,
        "seconds-between-status-checks": 2,
        "latency-wait": 10,
        "max-threads": cpus,
    }
    for key, value in fast.items():
        changes.append(f"{key}: {profile.get(key, 'default')} -> {value}")
        profile[key] = value
    return profile, changes


def final_outputs(workdir, env):
    """The input files of `rule all` (every final output), from a dry run that plans everything."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "1", "--configfile", *configfiles(workdir)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    match = re.search(r"^rule all:\n\s+input: (.*)$", proc.stdout, flags=re.M)
    assert match, proc.stdout[-3000:]
    return [workdir / p for p in match.group(1).split(", ")]


@pytest.fixture(scope="module")
def local_cluster(request):
    if os.environ.get("LESIONBENCH_CLUSTER_TEST") != "1":
        pytest.skip("installs and starts SLURM with apt: run it with `make test-cluster` (LESIONBENCH_CLUSTER_TEST=1)")
    check = cluster("check")
    if check.returncode == 3:
        pytest.skip(f"no local SLURM cluster: {check.stdout.strip()}")
    assert check.returncode == 0, check.stdout + check.stderr
    install = cluster("install", timeout=600)
    if install.returncode == 3:
        pytest.skip(f"no local SLURM cluster: {install.stdout.strip()}")
    assert install.returncode == 0, install.stdout + install.stderr
    # The daemons' files must be reachable by user munge: a world-traversable folder, not pytest's.
    run_dir = Path(tempfile.mkdtemp(prefix="lesionbench-slurm-"))
    run_dir.chmod(0o755)
    up = cluster("up", str(run_dir))
    try:
        if up.returncode == 3:
            pytest.skip(f"no local SLURM cluster: {up.stdout.strip()}")
        assert up.returncode == 0, up.stdout + up.stderr
        yield {
            "run_dir": run_dir,
            "install": install.stdout.strip(),
            "pids": up.stdout.strip(),
            "node": up.stderr.strip().splitlines()[-1],
        }
    finally:
        down = cluster("down", str(run_dir))
        stopped = re.findall(r"stopped (\w+ \(\d+\))", down.stderr)
        say(request, f"cluster torn down, daemons stopped by PID: {', '.join(stopped) or 'none running'}")
        assert down.returncode == 0, down.stdout + down.stderr
        shutil.rmtree(run_dir, ignore_errors=True)


def test_tiny_pipeline_runs_through_slurm(local_cluster, tmp_path, request):
    say(request, f"SLURM packages: {local_cluster['install']}; {local_cluster['node']}")
    say(request, f"daemons started (PIDs): {local_cluster['pids']}")
    workdir = copy_workflow(tmp_path / "lesionbench")
    profile, changes = fit_profile_to_node(yaml.safe_load(PROFILE.read_text()), os.cpu_count() or 1)
    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    say(request, "workflow/profiles/slurm fitted to the test node:\n  " + "\n  ".join(changes))

    env = dict(
        os.environ,
        PYTHONPATH=str(workdir / "src"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    targets = final_outputs(workdir, env)
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--workflow-profile",
            str(profile_dir),
            "--configfile",
            *configfiles(workdir),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    (tmp_path / "snakemake.log").write_text(log)
    assert proc.returncode == 0, log[-6000:]

    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
    planned = re.search(r"^total\s+(\d+)$", log, flags=re.M)
    assert planned, log[-3000:]
    # every job but `rule all` (which runs no code) went through sbatch
    assert len(submitted) == int(planned.group(1)) - 1, log[-6000:]
    slurm_ids = sorted({int(s) for _, s in submitted})

    # SLURM's own record (squeue keeps finished jobs for MinJobAge): every job COMPLETED, training on a GPU.
    queue = subprocess.run(
        ["squeue", "-t", "all", "-h", "--Format=JobID:|,State:|,NumCPUs:|,MinMemory:|,tres-per-job:|,Comment:|"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert queue.returncode == 0, queue.stderr
    rows = {int(r.split("|")[0]): r.split("|")[:6] for r in queue.stdout.splitlines() if r.strip()}
    mine = {i: rows[i] for i in slurm_ids if i in rows}
    assert set(mine) == set(slurm_ids), f"jobs missing from squeue: {set(slurm_ids) - set(mine)}"
    assert {row[1] for row in mine.values()} == {"COMPLETED"}, queue.stdout
    train = [row for row in mine.values() if row[5].startswith("rule_train_")]
    assert train and all("gpu" in row[4] for row in train), queue.stdout
    say(request, f"snakemake with the slurm executor finished in {seconds:.0f} s")
    say(
        request,
        f"{len(slurm_ids)} jobs submitted via sbatch (SLURM job ids {slurm_ids[0]}-{slurm_ids[-1]}), "
        f"all COMPLETED per squeue; {len(train)} training jobs with {train[0][4]}",
    )
    say(request, "squeue -t all (id|state|cpus|mem|tres|rule):\n  " + "\n  ".join("|".join(mine[i]) for i in slurm_ids))

    missing = [str(p.relative_to(workdir)) for p in targets if not p.exists()]
    assert not missing, f"final outputs missing: {missing}"
    empty = [str(p.relative_to(workdir)) for p in targets if p.is_file() and p.stat().st_size == 0]
    assert not empty, f"final outputs empty: {empty}"
    say(request, f"all {len(targets)} final outputs exist")


# The profile itself, without a cluster: a dry run plans every job with the profile's resources.


def dry_run_jobs(args):
    """[(rule, {resource: value})] of every job in a dry run."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = []
    for block in re.split(r"^\[.*\]\n(?=(?:local)?rule )", proc.stdout, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        line = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        resources = dict(kv.split("=", 1) for kv in line.group(1).split(", ")) if line else {}
        jobs.append((rule, resources))
    return jobs


@pytest.mark.parametrize("config", ["tiny", "full"])
def test_slurm_profile_requests_a_gpu_for_training_only(config, tmp_path):
    """Training (and prediction) jobs ask for one GPU; metrics, statistics and figures for none."""
    files = {"tiny": [str(ROOT / "config" / "config.yaml"), str(TINY)], "full": [str(ROOT / "config" / "full.yaml")]}[
        config
    ]
    jobs = dry_run_jobs(
        [
            "--workflow-profile",
            str(PROFILE.parent),
            "--configfile",
            *files,
            "--config",
            f"results={tmp_path / 'results'}",
            f"figures={tmp_path / 'figures'}",
        ]
    )
    profile = yaml.safe_load(PROFILE.read_text())
    train = [res for rule, res in jobs if rule == "train"]
    assert train, [rule for rule, _ in jobs]
    for res in train:
        assert res.get("gpu") == "1", res
        assert res.get("cpus_per_gpu") == str(profile["set-resources"]["train"]["cpus_per_gpu"]), res
        assert res.get("mem_mb") == str(profile["set-resources"]["train"]["mem_mb"]), res
        assert res.get("runtime") == str(profile["set-resources"]["train"]["runtime"]), res
    cpu_only = [(rule, res) for rule, res in jobs if rule not in ("train", "predict")]
    assert cpu_only and all(res.get("gpu", "0") == "0" for _, res in cpu_only), cpu_only


def test_slurm_profile_names_only_existing_rules():
    """A misspelt or renamed rule in set-resources would be ignored silently; catch it here."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rules = set(proc.stdout.split())
    named = set(yaml.safe_load(PROFILE.read_text())["set-resources"])
    assert named <= rules, f"set-resources names unknown rules: {sorted(named - rules)}"
