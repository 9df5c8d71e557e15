"""Training of the registry's models: one protocol per data set (docs/models.md)."""

from .config import DEFAULTS, TrainingConfigError, resolve_training_config
from .loop import RESUME_DIR, dice_score, resolve_device, train, train_step, validation_dice
from .sampling import Augmentation, SliceSampler, TrainingDataError, read_split
from .transforms import predict_probabilities

__all__ = ["DEFAULTS", "RESUME_DIR", "Augmentation", "SliceSampler", "TrainingConfigError", "TrainingDataError",
           "dice_score", "predict_probabilities", "read_split", "resolve_device", "resolve_training_config",
           "train", "train_step", "validation_dice"]
