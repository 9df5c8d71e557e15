"""One line for a failed workflow run: which step, for which data set / model / case, and the problem, read
from Snakemake's output and the failing rule's log (``runtime.rule_logging`` writes the error message there
first), so ``lesionbench compare`` can end on it instead of on Snakemake's chatter."""

from __future__ import annotations

import re
from pathlib import Path

RULE_ERROR = re.compile(r"^Error in rule (\S+):\s*$")
LOG_LINE = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?\s*$")
WILDCARDS = re.compile(r"^\s+wildcards: (.+?)\s*$")
# runtime.rule_logging: "<date> <time> ERROR <logger>: <ExceptionType>: <message>"
LOGGED_ERROR = re.compile(r"^\S+ \S+ ERROR \S+: (?:\w+(?:Error|Exception)): (.*)$")
# Snakemake's own errors before any job runs (config, schema, workflow code)
GENERIC = ("Exiting because a job execution failed", "Complete log", "WorkflowError:", "Shutting down")


def logged_error(log: Path) -> str | None:
    """The message of the error a rule logged (with its continuation lines), or None."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines):
        m = LOGGED_ERROR.match(line)
        if m:
            more = []
            for follow in lines[i + 1 :]:
                if re.match(r"^\d{4}-\d\d-\d\d ", follow) or follow.startswith("Traceback"):
                    break
                more.append(follow.strip())
            return " ".join([m.group(1).strip(), *[x for x in more if x]])
    return None


def failure_line(snakemake_output: str) -> str:
    """The cause of a failed run in one line."""
    lines = snakemake_output.splitlines()
    for i, line in enumerate(lines):
        m = RULE_ERROR.match(line)
        if not m:
            continue
        rule, log, wildcards = m.group(1), None, None
        for follow in lines[i + 1 : i + 40]:
            if not follow.startswith((" ", "\t")):
                break
            if (w := WILDCARDS.match(follow)) is not None:
                wildcards = w.group(1)
            if (g := LOG_LINE.match(follow)) is not None:
                log = g.group(1).split(",")[0].strip()
        where = f"step {rule}" + (f" ({wildcards})" if wildcards else "")
        message = logged_error(Path(log)) if log else None
        if message:
            return f"{where}: {message} (log: {log})"
        return f"{where} failed" + (f"; its log: {log}" if log else "")
    # no rule failed: Snakemake stopped before running jobs (config, schema, DAG); its last informative line
    informative = [s.strip() for s in lines if s.strip() and not s.strip().startswith(GENERIC)]
    return informative[-1] if informative else "Snakemake failed without output"
