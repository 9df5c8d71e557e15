"""Evaluation-only runs: reference masks and other tools' predictions in, the whole study out
(``lesionbench compare``, docs/contracts.md "Evaluate your own predictions")."""
