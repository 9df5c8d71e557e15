"""Training of the registry's models: one protocol per data set (DESIGN section 5).

The protocol (``config``) imports no torch, so the Snakefile's config check can resolve it cheaply; the
rest is imported on first use.
"""

import importlib

from .config import DEFAULTS, TrainingConfigError, resolve_training_config

_LAZY = {
    "RESUME_DIR": "loop", "dice_score": "loop", "resolve_device": "loop", "train": "loop", "train_step": "loop",
    "validation_dice": "loop",
    "Augmentation": "sampling", "SliceSampler": "sampling", "TrainingDataError": "sampling", "read_split": "sampling",
    "predict_probabilities": "transforms",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULTS", "RESUME_DIR", "Augmentation", "SliceSampler", "TrainingConfigError", "TrainingDataError",
           "dice_score", "predict_probabilities", "read_split", "resolve_device", "resolve_training_config",
           "train", "train_step", "validation_dice"]
