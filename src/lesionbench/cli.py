"""The ``lesionbench`` command: ``lesionbench compare`` (reference and prediction folders in, the stratified
study out) and ``lesionbench evaluate`` (one predictions folder against prepared references; the same as
``lesionbench-evaluate``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: lesionbench {compare,evaluate} ...\n\n"
        "  compare   reference masks and prediction folders in, every study table, figure and report out\n"
        "  evaluate  per-case and per-lesion tables of one predictions folder against prepared references\n\n"
        "`lesionbench SUBCOMMAND --help` describes each."
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "compare":
        from .compare.command import main as compare_main

        return compare_main(rest)
    if command == "evaluate":
        from .evaluation.cli import main as evaluate_main

        return evaluate_main(rest)
    print(f"lesionbench: unknown command {command!r}\n\n{usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
