"""Evaluation of prediction folders: per-case and per-lesion metric tables (docs/contracts.md)."""

from .folder import (
    PER_CASE_COLUMNS,
    PER_LESION_COLUMNS,
    EvaluationError,
    Settings,
    evaluate_folder,
    evaluate_to_files,
    test_case_ids,
)

__all__ = [
    "PER_CASE_COLUMNS",
    "PER_LESION_COLUMNS",
    "EvaluationError",
    "Settings",
    "evaluate_folder",
    "evaluate_to_files",
    "test_case_ids",
]
