"""Clear a stale Snakemake lock before ``make run``, only when no Snakemake process holds it.

Snakemake locks its working directory with files in ``.snakemake/locks/``; a run killed with ``kill -9``
(or a power loss) leaves them, and the next run stops with a LockException until ``snakemake --unlock``.
``make run`` calls ``python -m lesionbench.runlock`` first:

- no lock files: nothing to do, nothing printed;
- lock files and a live Snakemake process working in this directory (its main process, or a job script it
  started, ``.snakemake/scripts/...``): the lock is not stale; it says which process holds it, exit 1;
- lock files and no such process: the lock is stale; the files are removed (what ``snakemake --unlock``
  does) and it says so, exit 0.

Processes are found through ``/proc`` (Linux: their command line and working directory). Where there is
no ``/proc`` every process whose command line runs Snakemake counts as a holder, wherever it works.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def is_snakemake(argv: list[str]) -> bool:
    """A Snakemake main process (``snakemake ...``, ``python -m snakemake ...``) or a job script it runs."""
    if not argv:
        return False
    if any(Path(a).name == "snakemake" for a in argv[:2]):
        return True
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "snakemake":
        return True
    return any(f".snakemake{os.sep}scripts{os.sep}" in a for a in argv)


def _proc_processes() -> list[tuple[int, list[str], Path | None]]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a for a in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone, or another user's process
            try:
                argv = [a for a in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
            except OSError:
                continue
            cwd = None
        out.append((int(entry.name), argv, cwd))
    return out


def _ps_processes() -> list[tuple[int, list[str], Path | None]]:
    text = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "command="], capture_output=True, text=True,
                          check=True).stdout
    rows: list[tuple[int, list[str], Path | None]] = []
    for line in text.splitlines():
        pid, _, command = line.strip().partition(" ")
        if pid.isdigit():
            rows.append((int(pid), command.split(), None))
    return rows


def holders(workdir: str | os.PathLike) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the Snakemake processes that may hold ``workdir``'s lock."""
    workdir = Path(workdir).resolve()
    processes = _proc_processes() if Path("/proc/self/cwd").exists() else _ps_processes()
    me = {os.getpid(), os.getppid()}
    found = []
    for pid, argv, cwd in processes:
        if pid in me or not is_snakemake(argv):
            continue
        if cwd is None or cwd == workdir:  # an unknown working directory may be this one
            found.append((pid, " ".join(argv)))
    return sorted(found)


def clear_stale_lock(workdir: str | os.PathLike = ".") -> tuple[bool, str]:
    """Remove ``workdir``'s Snakemake lock files when no Snakemake process holds them.

    Returns ``(ok to run, message)``; the message is empty when there was no lock."""
    locks = Path(workdir) / ".snakemake" / "locks"
    files = sorted(p for p in locks.glob("*") if p.is_file()) if locks.is_dir() else []
    if not files:
        return True, ""
    held = holders(workdir)
    if held:
        who = "; ".join(f"pid {pid}: {cmd[:120]}" for pid, cmd in held[:5])
        return False, (f"{locks.resolve()} is held by a running Snakemake ({who}); not removing it. Wait for "
                       f"that run to finish, or stop it, then run again.")
    for p in files:
        p.unlink(missing_ok=True)
    return True, (f"Removed a stale Snakemake lock ({locks.resolve()}: {len(files)} files) left by a run that "
                  f"was interrupted; no Snakemake process is running in {Path(workdir).resolve()}. Incomplete "
                  f"outputs are re-run (rerun-incomplete in the workflow profile).")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ok, message = clear_stale_lock(args[0] if args else ".")
    if message:
        print(message, file=sys.stdout if ok else sys.stderr, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
