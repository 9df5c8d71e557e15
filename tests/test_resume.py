"""Resuming after a kill: rule logs carry over, stale Snakemake locks are cleared only when nobody holds
them, checkpoints are byte-identical, and `make run` run again after SIGKILL finishes with the weights of
an uninterrupted run (docs/reliability.md)."""

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, TINY, copy_workflow
from lesionbench import runlock
from lesionbench.runtime import INTERRUPTED_MARKER, interrupted_copy, rule_logging
from lesionbench.training import RESUME_DIR, train
from test_training import SHORT, make_dataset
from test_training import TINY as TINY_MODEL

ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))


def test_rule_log_keeps_the_lines_written_before_a_kill(tmp_path):
    log_path = tmp_path / "logs" / "train.log"
    code = (
        "import sys, time; from lesionbench.runtime import rule_logging\n"
        "with rule_logging(sys.argv[1]) as log:\n"
        "    log.info('epoch 1/3 done'); print('logged', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(log_path)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "logged"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log_path.unlink()  # Snakemake removes a job's log before running it again
    with rule_logging(str(log_path)) as log:
        log.info("resuming after epoch 1")
    text = log_path.read_text()
    assert text.index("epoch 1/3 done") < text.index(INTERRUPTED_MARKER) < text.index("resuming after epoch 1")
    assert not interrupted_copy(log_path).exists()
    with rule_logging(str(log_path)) as log:  # a normal re-run starts a fresh log
        log.info("again")
    assert "epoch 1/3 done" not in log_path.read_text()


def lock(workdir: Path):
    locks = workdir / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text(str(workdir / "results"))
    (locks / "0.output.lock").write_text(str(workdir / "results"))
    return locks


def test_stale_lock_is_removed_and_said(tmp_path, capsys):
    locks = lock(tmp_path)
    assert runlock.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Removed a stale Snakemake lock ({locks.resolve()}: 2 files)" in out
    assert "no Snakemake process is running" in out and list(locks.iterdir()) == []
    assert runlock.main([str(tmp_path)]) == 0 and capsys.readouterr().out == ""  # no lock: silent


def test_lock_held_by_a_running_job_is_kept(tmp_path, capsys):
    locks = lock(tmp_path)
    script = tmp_path / ".snakemake" / "scripts" / "tmpabc.train.py"
    script.parent.mkdir(parents=True)
    script.write_text("import time; time.sleep(60)\n")
    job = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)  # a job script of a live run
    try:
        time.sleep(0.2)
        assert runlock.main([str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert f"{locks.resolve()} is held by a running Snakemake (pid {job.pid}:" in err
        assert "not removing it" in err and len(list(locks.iterdir())) == 2
    finally:
        job.kill()
        job.wait()
    assert runlock.main([str(tmp_path)]) == 0 and list(locks.iterdir()) == []


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["/x/.venv/bin/snakemake", "--cores", "2"], True),
        (["/usr/bin/python3", "/x/.venv/bin/snakemake", "-n"], True),
        (["python", "-m", "snakemake", "--cores", "1"], True),
        (["python", "/w/.snakemake/scripts/tmp1.train.py"], True),
        (["python", "-m", "lesionbench.runlock"], False),
        (["vim", "snakemake.txt"], False),
    ],
)
def test_what_counts_as_snakemake(argv, expected):
    assert runlock.is_snakemake(argv) == expected


def test_checkpoints_byte_identical_and_resumed_log_keeps_seconds(tmp_path):
    prepared, split = make_dataset(tmp_path, 2)
    cfg = {**SHORT, "epochs": 3}
    for name in ("a", "b"):
        train(prepared, split, tmp_path / name, "hybrid_transformer", TINY_MODEL, cfg, seed=2, progress=False)
    part = tmp_path / "part"
    train(prepared, split, part, "hybrid_transformer", TINY_MODEL, cfg, seed=2, progress=False, stop_after=1)
    for name in ("best.pt", "last.pt", "train_log.csv", "config.json"):  # as Snakemake before a re-run
        (part / name).unlink()
    train(prepared, split, part, "hybrid_transformer", TINY_MODEL, cfg, seed=2, progress=False)
    for name in ("best.pt", "last.pt"):
        assert (
            (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes() == (part / name).read_bytes()
        ), name
    log = pd.read_csv(part / "train_log.csv")
    assert log["epoch"].tolist() == [1, 2, 3] and log["seconds"].notna().all() and (log["seconds"] > 0).all()


# ---- kill -9 of `make run`, then `make run` again --------------------------------------------------------


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def one_model_config(path: Path) -> dict:
    """The tiny run cut to one data set and one model, trained long enough to be killed mid-training."""
    cfg = deep_merge(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), yaml.safe_load(TINY.read_text()))
    cfg["datasets"] = {"synthetic_fundus": cfg["datasets"]["synthetic_fundus"]}
    cfg["models"] = {"unet": cfg["models"]["unet"]}
    cfg["training"].update(epochs=4, steps_per_epoch=3, patience=0)
    for key in ("epochs", "steps_per_epoch", "patience"):  # the data set's own budget would override these
        cfg["datasets"]["synthetic_fundus"].get("training", {}).pop(key, None)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def make_run(workdir: Path, configfile: Path) -> list[str]:
    """`make run` of the project's Makefile with the test's interpreter and this config (same every time)."""
    return [
        "make",
        "--no-print-directory",
        "run",
        "STAMP=",
        f"BIN={Path(sys.executable).parent}",
        "CORES=2",
        f"SNAKEMAKE_ARGS=--configfile {configfile}",
    ]


def test_make_run_resumes_after_sigkill_mid_training(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("kill") / "lesionbench")
    (workdir / "Makefile").write_bytes((ROOT / "Makefile").read_bytes())
    configfile = workdir / "one_model.yaml"
    cfg = one_model_config(configfile)
    env = dict(
        os.environ,
        PYTHONPATH=str(workdir / "src"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    command = make_run(workdir, configfile)
    model_dir = workdir / "results" / "models" / "synthetic_fundus" / "unet" / "seed0"
    train_log = workdir / "results" / "logs" / "train" / "synthetic_fundus" / "unet" / "seed0.log"

    first = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 600
    while not (model_dir / RESUME_DIR / "last.pt").is_file():  # one epoch done, three to go
        assert first.poll() is None, "the first run ended before training had saved an epoch"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # make, snakemake and the training job, as a power cut would
    first.wait()
    epochs_before = torch.load(model_dir / RESUME_DIR / "last.pt", weights_only=True)["epoch"]
    assert 1 <= epochs_before < 4, epochs_before
    assert any((workdir / ".snakemake" / "locks").iterdir())  # what made the README's command fail before
    assert interrupted_copy(train_log).is_file()

    second = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-6000:]
    assert "Removed a stale Snakemake lock" in out and "no Snakemake process is running" in out
    assert (workdir / "results" / "report.html").is_file()
    log_text = train_log.read_text()
    assert "epoch 1/4" in log_text.split(INTERRUPTED_MARKER)[0]  # the epochs before the kill are kept
    assert f"resuming after epoch {epochs_before}" in log_text.split(INTERRUPTED_MARKER)[1]
    assert not interrupted_copy(train_log).exists() and not (model_dir / RESUME_DIR).exists()
    assert [p for p in (workdir / "results").rglob("*") if ".tmp" in p.name] == []
    assert pd.read_csv(model_dir / "train_log.csv")["epoch"].tolist() == [1, 2, 3, 4]

    # the uninterrupted run: the same job's training, from scratch, on the same prepared data
    reference = tmp_path_factory.mktemp("uninterrupted")
    data = workdir / "results" / "data" / "synthetic_fundus"
    training = {
        k: ({**cfg["training"].get(k, {}), **v} if isinstance(v, dict) else v)
        for k, v in {**cfg["training"], **cfg["datasets"]["synthetic_fundus"].get("training", {})}.items()
        if k != "num_threads"
    }
    train(
        data / "prepared",
        data / "split.csv",
        reference,
        "unet",
        cfg["models"]["unet"],
        training,
        seed=0,
        device=cfg["device"],
        dataset="synthetic_fundus",
        threads=1,
        progress=False,
    )
    for name, key in (("best.pt", "state_dict"), ("last.pt", "model")):
        resumed = torch.load(model_dir / name, weights_only=True)[key]
        uninterrupted = torch.load(reference / name, weights_only=True)[key]
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), name
        assert (model_dir / name).read_bytes() == (reference / name).read_bytes(), name
