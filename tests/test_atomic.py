"""Atomic writes under faults: a kill mid-write, a full disk, a read-only folder; byte-stable checkpoints."""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lesionbench.io import atomic
from lesionbench.io.atomic import WriteError, atomic_dir, atomic_path, write_csv
from lesionbench.training.loop import _save

ROOT = Path(__file__).resolve().parents[1]


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or p.name.endswith(".old"))


def test_kill_during_write_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "table.csv"
    write_csv(pd.DataFrame({"a": [1]}), target)
    before = target.read_bytes()
    code = (
        "import sys, time; from lesionbench.io.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half a tab'); print('writing', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
    )
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".table.csv.") and left[0].endswith(".tmp"), left
    assert target.read_bytes() == before  # the kill never touched the finished output
    write_csv(pd.DataFrame({"a": [2]}), target)
    assert temporaries(tmp_path) == []
    assert pd.read_csv(target)["a"].tolist() == [2]


def test_stale_temporaries_of_other_targets_are_kept(tmp_path):
    # `.x.csv.extra.XXXXXXXX.tmp` belongs to the target `x.csv.extra`, not to `x.csv`.
    mine = [tmp_path / ".x.csv.ab12cd_4.tmp", tmp_path / ".x.csv.old"]
    other = [tmp_path / ".x.csv.extra.ab12cd34.tmp", tmp_path / ".y.csv.ab12cd34.tmp"]
    for p in mine + other:
        p.write_bytes(b"")
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "x.csv")
    assert temporaries(tmp_path) == sorted(p.name for p in other)
    stale_dir = tmp_path / ".cases.zz99zz99.tmp"
    stale_dir.mkdir()
    (stale_dir / "half.npy").write_bytes(b"")
    with atomic_dir(tmp_path / "cases") as tmp:
        (tmp / "a.npy").write_bytes(b"x")
    assert not stale_dir.exists() and (tmp_path / "cases" / "a.npy").read_bytes() == b"x"


def write_npy(array, path):
    """An array written the way the prepare stage writes its arrays: np.save inside an atomic write."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def test_disk_full_names_the_file_and_keeps_the_earlier_output(tmp_path, monkeypatch):
    target = tmp_path / "prepared" / "image.npy"
    write_npy(np.zeros(3), target)

    def partial_save(path, array):  # what numpy raises when the disk fills mid-write (no errno)
        Path(path).write_bytes(b"\x93NUMPY")
        raise OSError("4096 requested and 3040 written")

    monkeypatch.setattr(np, "save", partial_save)
    monkeypatch.setattr(atomic, "_free_bytes", lambda folder: 3040)
    with pytest.raises(WriteError) as info:
        write_npy(np.ones(3), target)
    msg = str(info.value)
    assert str(target) in msg and "the disk is full" in msg and "3040 bytes free" in msg
    assert "free space there" in msg and "4096 requested and 3040 written" in msg
    assert info.value.errno == errno.ENOSPC
    np.testing.assert_array_equal(np.load(target), np.zeros(3))
    assert temporaries(target.parent) == []


def test_enospc_from_a_table_writer(tmp_path, monkeypatch):
    target = tmp_path / "per_case.csv"
    write_csv(pd.DataFrame({"a": [1]}), target)

    def full(self, path, **kwargs):
        Path(path).write_text("a\n")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(WriteError, match=r"per_case\.csv: cannot write: the disk is full"):
        write_csv(pd.DataFrame({"a": [2]}), target)
    monkeypatch.undo()
    assert pd.read_csv(target)["a"].tolist() == [1] and temporaries(tmp_path) == []


def test_permission_denied_names_the_folder(tmp_path, monkeypatch):
    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    target = tmp_path / "results" / "overall.csv"
    with pytest.raises(WriteError) as info:
        write_csv(pd.DataFrame({"a": [1]}), target)
    msg = str(info.value)
    assert msg.startswith(f"{target}: cannot write: permission denied")
    assert f"cannot write in {target.parent}" in msg and "writable folder" in msg
    assert info.value.errno == errno.EACCES


def test_other_errors_pass_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.csv"):
        open(tmp_path / "missing-input.csv").close()
    with pytest.raises(ValueError, match="not a write problem"), atomic_path(tmp_path / "out.csv"):
        raise ValueError("not a write problem")
    assert list(tmp_path.iterdir()) == []


def checkpoint_state():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1, 2, 3)
    return {"format": 1, "epoch": 3, "state_dict": model.state_dict(), "log": [[1, 0.5, 0.25]]}


def test_checkpoints_are_byte_identical_across_runs(tmp_path):
    _save(checkpoint_state(), tmp_path / "a" / "last.pt")
    _save(checkpoint_state(), tmp_path / "b" / "last.pt")
    _save(checkpoint_state(), tmp_path / "b" / "best.pt")
    data = (tmp_path / "a" / "last.pt").read_bytes()
    assert data == (tmp_path / "b" / "last.pt").read_bytes() == (tmp_path / "b" / "best.pt").read_bytes()
    loaded = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert torch.equal(loaded["state_dict"]["weight"], checkpoint_state()["state_dict"]["weight"])
    # the cause it removes: saving to a path stores that (random temporary) name inside the archive
    torch.save(checkpoint_state(), tmp_path / ".last.pt.abcdefgh.tmp.pt")
    assert b".last.pt.abcdefgh.tmp" in (tmp_path / ".last.pt.abcdefgh.tmp.pt").read_bytes()
    assert b"tmp" not in data


def test_checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    _save(checkpoint_state(), target)
    before = target.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(WriteError, match=rf"{target}: cannot write: the disk is full"):
        _save({**checkpoint_state(), "epoch": 4}, target)
    monkeypatch.undo()
    assert target.read_bytes() == before and temporaries(tmp_path) == []
