"""File-level steps of the data stage, one module per rule (the rule scripts only call these).

One module per rule, each importing only what its step uses, so a rule's tracked code (its script's import
closure, ``lesionbench.code_closure``) is exactly the code it runs: editing the validation re-runs
``validate_data`` and not the preparation. This package imports none of its modules.
"""
