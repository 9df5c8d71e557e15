"""Atomic file writes: a reader (or a crash) never sees a half-written output.

Every output is written to a temporary name beside its target (``.NAME.XXXXXXXX.tmpSUFFIX``, a file, or
``.NAME.XXXXXXXX.tmp``, a folder) and renamed onto the target only when complete. A process killed mid-write
(``kill -9``, power loss) leaves such a temporary behind; the next write of the same target removes it
first, so a rerun leaves no temporary files. One writer per target is assumed (the workflow guarantees it:
each output belongs to one job).

A write that fails because the disk is full or the folder is not writable raises :class:`WriteError`, whose
message names the target, the cause and what to do; the target keeps its earlier content.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

# Below this many free bytes an OSError without an errno (numpy's "4096 requested and 3040 written",
# for one) is reported as a full disk: such partial writes happen only when the file system runs out.
DISK_FULL_BYTES = 1 << 20
DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


class WriteError(OSError):
    """An output could not be written; the message names the path, the cause and the fix."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _free_bytes(folder: Path) -> int | None:
    for p in (folder, *folder.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free
            except OSError:
                return None
    return None


def write_error(exc: BaseException, path: str | os.PathLike) -> WriteError | None:
    """A :class:`WriteError` explaining ``exc`` raised while writing ``path``, or None when ``exc`` is not
    a full disk or a permission problem (then it is re-raised unchanged)."""
    path = Path(path)
    code = getattr(exc, "errno", None)
    free = _free_bytes(path.parent)
    if code in DISK_FULL_ERRNOS or (
        isinstance(exc, OSError) and code is None and free is not None and free < DISK_FULL_BYTES
    ):
        cause = (
            f"the disk is full ({free if free is not None else 'unknown'} bytes free on the file system "
            f"of {path.parent}); free space there, or set `results:` to a folder on another disk, "
            f"then run again (finished outputs are kept)"
        )
    elif code in PERMISSION_ERRNOS:
        cause = (
            f"permission denied ({os.strerror(code)}): this user cannot write in {path.parent}; fix its "
            f"permissions or set `results:` to a writable folder, then run again"
        )
    else:
        return None
    err = WriteError(f"{path}: cannot write: {cause} [{type(exc).__name__}: {exc}]")
    err.errno = code if code is not None else errno.ENOSPC
    return err


@contextlib.contextmanager
def _explained(path: Path) -> Iterator[None]:
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        explained = write_error(exc, path)
        if explained is None:
            raise
        raise explained from exc


def _temp_pattern(name: str, suffix: str) -> re.Pattern:
    # tempfile's random part: 8 characters of [a-z0-9_]; anchored so `a.csv`'s temporaries never match `a`.
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp{re.escape(suffix)}")


def remove_stale_temporaries(path: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Remove temporaries of ``path`` left by an interrupted earlier write; return what was removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern, removed = _temp_pattern(path.name, suffix), []
    old = path.with_name(f".{path.name}.old")  # atomic_dir's displaced previous version
    for p in path.parent.iterdir():
        if pattern.fullmatch(p.name) or p == old:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps ``suffix`` (e.g. ``.nii.gz``) so format-sniffing writers still work.
    """
    path = Path(path)
    with _explained(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path, suffix)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _explained(path):
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
            yield tmp_path
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    with _explained(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _explained(path):
            os.chmod(tmp, 0o777 & ~_UMASK)
            yield tmp
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_csv(df: pd.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    """Write a table atomically, without the index, with floats at full precision."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, **kwargs)


def write_json(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
