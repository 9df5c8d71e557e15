"""Training of the registry's models: one protocol per data set (docs/models.md).

The protocol (``config``) imports no torch, so the Snakefile's config check can resolve it cheaply; the
rest is imported on first use of one of its names.
"""

from .config import DEFAULTS, TrainingConfigError, resolve_training_config

__all__ = ["DEFAULTS", "RESUME_DIR", "Augmentation", "SliceSampler", "TrainingConfigError", "TrainingDataError",
           "dice_score", "predict_probabilities", "read_split", "resolve_device", "resolve_training_config",
           "train", "train_step", "validation_dice"]


def __getattr__(name: str):
    # Plain imports (not importlib strings), so lesionbench.code_closure still sees what this package runs.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .loop import RESUME_DIR, dice_score, resolve_device, train, train_step, validation_dice
    from .sampling import Augmentation, SliceSampler, TrainingDataError, read_split
    from .transforms import predict_probabilities

    names = {"RESUME_DIR": RESUME_DIR, "dice_score": dice_score, "resolve_device": resolve_device, "train": train,
             "train_step": train_step, "validation_dice": validation_dice, "Augmentation": Augmentation,
             "SliceSampler": SliceSampler, "TrainingDataError": TrainingDataError, "read_split": read_split,
             "predict_probabilities": predict_probabilities}
    return names[name]
