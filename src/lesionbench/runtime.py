"""What every rule script shares: its log file and a clear failure message."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("lesionbench")


INTERRUPTED_MARKER = "----- the attempt above was interrupted (killed); this job ran again -----\n"


def interrupted_copy(log_path: str | os.PathLike) -> Path:
    """The hidden copy of a rule log kept while its job runs: ``.NAME.interrupted`` beside the log."""
    log_path = Path(log_path)
    return log_path.with_name(f".{log_path.name}.interrupted")


@contextlib.contextmanager
def rule_logging(log_path: str | None) -> Iterator[logging.Logger]:
    """Send this script's logging, warnings and any traceback to the rule's log file (and stderr).

    An exception is logged with its message first, so ``snakemake`` output plus the log name it prints
    lead straight to the bad file or case, then re-raised so the job fails.

    Logs carry across a kill: Snakemake deletes a job's log before running it again, so while the job runs
    every line also goes to a hidden copy (:func:`interrupted_copy`), removed when the job ends (success or
    error). A copy still there at the next start means the previous attempt was killed; its lines open the
    new log, followed by :data:`INTERRUPTED_MARKER` (e.g. the epochs trained before the kill stay in the
    train log of the resumed job).
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    keep = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        keep = interrupted_copy(log_path)
        earlier = keep.read_text(errors="replace") if keep.is_file() else ""
        start = earlier + (INTERRUPTED_MARKER if earlier else "")
        for path in (log_path, keep):
            Path(path).write_text(start)
            handlers.append(logging.FileHandler(path, mode="a"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield log
    except Exception as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        log.debug("".join(traceback.format_exc()))
        raise
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        if keep is not None:
            keep.unlink(missing_ok=True)
