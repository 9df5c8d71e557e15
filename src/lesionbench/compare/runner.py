"""Run Snakemake with its output in a log file, and end on what matters: the answer of the run, or one line
naming what failed. ``lesionbench compare`` uses it, and so does ``make run``:

    python -m lesionbench.compare.runner RESULTS -- snakemake ARGS...

runs the command, writes its output to ``RESULTS/logs/snakemake.log`` (on a terminal one status line shows
Snakemake's progress), then prints ``RESULTS/answer/summary.txt``, or on failure the failing step and its
logged error as the last line, and exits with Snakemake's code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .failure import failure_line

PROGRESS = re.compile(r"^\d+ of \d+ steps \(\d+%\) done")


def run_logged(cmd: list[str], env: dict[str, str], log_path: Path, verbose: bool) -> tuple[int, str]:
    """Run ``cmd`` with its output written to ``log_path`` (shown too with ``verbose``; on a terminal, its
    progress lines update one status line). Returns (exit code, output)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    status = sys.stdout.isatty() and not verbose
    lines = []
    with (
        open(log_path, "w") as log,
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            if verbose:
                sys.stdout.write(line)
            elif status and PROGRESS.match(line):
                sys.stdout.write("\r  " + line.strip())
                sys.stdout.flush()
        code = proc.wait()
    if status:
        sys.stdout.write("\r\033[K")
    return code, "".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m lesionbench.compare.runner RESULTS -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    results, cmd = Path(argv[0]), argv[2:]
    log_path = results / "logs" / "snakemake.log"
    print(f"running {' '.join(cmd[:1])}; its output: {log_path}", flush=True)
    code, output = run_logged(cmd, dict(os.environ), log_path, verbose=False)
    if code != 0:
        print(f"error: {failure_line(output)} [Snakemake's output: {log_path}]", file=sys.stderr)
        return code
    summary = results / "answer" / "summary.txt"
    print(summary.read_text().rstrip() if summary.is_file() else f"done: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
