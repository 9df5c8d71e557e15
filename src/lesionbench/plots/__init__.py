"""Figures of the study (matplotlib, Agg backend): model spread overall vs on small lesions, disagreement
per size quartile, the ranking-reversal matrix, qualitative small-lesion overlays and training curves.
Each function reads study tables (or prepared cases and predictions) and writes one PNG atomically."""
