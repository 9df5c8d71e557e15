"""Vectorised index arithmetic shared by the metric modules (no Python loop per component or pair)."""

from __future__ import annotations

import numpy as np


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranges ``starts[k] .. starts[k] + counts[k] - 1`` concatenated in order, and for each element
    the k of its range: ``expand_ranges([5, 0], [2, 3]) == ([5, 6, 0, 1, 2], [0, 0, 1, 1, 1])``."""
    starts = np.asarray(starts, np.int64)
    counts = np.asarray(counts, np.int64)
    first_out = np.cumsum(counts) - counts          # where each range begins in the output
    positions = np.arange(int(counts.sum())) + np.repeat(starts - first_out, counts)
    return positions, np.repeat(np.arange(len(counts)), counts)


def isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``numpy.isin(values, sorted_keys)`` for keys already sorted (one binary search per value)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values
