"""Statistics of the study: aggregation per lesion set and size stratum, ranking reversals, the paired case
bootstrap, the study summary, the sanity checks and the verdict on the claim.

Everything is computed from per-case sums (``strata``: one pass over the per-case and per-lesion metric
tables read by ``tables``, for the lesion sets ``all``, ``detected`` and ``common``); ``summary``,
``sanity``, ``claim`` and ``provenance`` build the verdict and its record. See docs/results.md for the tables
this package writes.
"""
