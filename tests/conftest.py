"""Shared test setup: headless plotting and single-threaded numerics for deterministic, quiet runs."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
