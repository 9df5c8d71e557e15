"""What every rule script shares: its log file and a clear failure message."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Iterator

log = logging.getLogger("lesionbench")


@contextlib.contextmanager
def rule_logging(log_path: str | None) -> Iterator[logging.Logger]:
    """Send this script's logging, warnings and any traceback to the rule's log file (and stderr).

    An exception is logged with its message first, so ``snakemake`` output plus the log name it prints
    lead straight to the bad file or case, then re-raised so the job fails.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
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
