"""File formats of the pipeline (see docs/contracts.md); every stage reads and writes through here."""
