"""Statistics of the study: aggregation, size strata, ranking reversals and the paired case bootstrap.

Everything is computed from per-case sums (``strata``) of the per-case and per-lesion metric tables
(``tables``); see docs/results.md for the tables this package writes.
"""
