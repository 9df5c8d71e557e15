"""The training protocol of a data set: the global ``training:`` block merged with ``datasets.<name>.training``.

Every model of a data set trains under the same resolved protocol; only the seed varies between runs.
"""

from __future__ import annotations

import copy
import math
from typing import Any

DEFAULTS: dict[str, Any] = {
    "encoder_weights": None,  # None (random init) | "imagenet"
    "mode": "patch",  # 2D: "patch" (native-resolution patches, sliding-window inference) | "resize"
    "input_size": 128,  # square training size: 2D patches (or resized images), slices cropped/padded
    "foreground_slice_ratio": 0.5,  # share of sampled slices/images drawn from those holding lesion voxels
    "batch_size": 8,
    "epochs": 10,  # epoch budget (the LR schedule spans all of it)
    "steps_per_epoch": None,  # None = one pass: (number of training slices or images) // batch_size
    "patience": 5,  # early stopping: epochs without a better validation Dice; 0 = off
    "lr": 1e-3,  # AdamW peak learning rate
    "weight_decay": 1e-4,
    "warmup_epochs": 1,  # linear warm-up, then cosine decay to lr * min_lr_ratio
    "min_lr_ratio": 0.01,
    "augmentation": {"flip": True, "rot90": True, "intensity": 0.1},
    "loss": {"dice_weight": 1.0, "bce_weight": 1.0},
    "val_threshold": 0.5,  # probability threshold of the validation Dice
    "val_batch_size": 16,  # volume slices or 2D tiles per forward pass when validating
    "amp": True,  # mixed precision, used only on a CUDA device
    "deterministic": True,  # torch.use_deterministic_algorithms (warn-only)
    "num_threads": 1,  # torch CPU threads (the rule's `threads`)
}

NESTED = ("augmentation", "loss")
MODES = ("patch", "resize")

# Sliding-window inference, shared by validation during training and by the predict rule.
INFERENCE_DEFAULTS: dict[str, Any] = {
    "tile_overlap": 0.5,  # share of a tile overlapping its neighbour along each axis, in [0, 1)
    "volume_tile_size": 512,  # volume slices with a side above this are tiled (tiles of this size)
    "batch_size": 8,  # tiles (or whole volume slices) per forward pass; never changes a result
}
# Inference keys that can change a prediction (the batch size cannot): these decide model selection.
INFERENCE_RESULT_KEYS = ("tile_overlap", "volume_tile_size")


class TrainingConfigError(ValueError):
    """The resolved training protocol of a data set is invalid; the message names the key."""


def deep_merge(base: dict, override: dict | None) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_training_config(
    training: dict | None, overrides: dict | None = None, where: str = "training"
) -> dict[str, Any]:
    """Defaults <- global ``training`` block <- the data set's ``training`` overrides; validated."""
    cfg = deep_merge(deep_merge(DEFAULTS, training), overrides)
    unknown = sorted(set(cfg) - set(DEFAULTS))
    for key in NESTED:
        unknown += [f"{key}.{k}" for k in sorted(set(cfg[key]) - set(DEFAULTS[key]))]
    if unknown:
        raise TrainingConfigError(f"{where}: unknown keys {unknown}")

    def bad(key, why):
        return TrainingConfigError(f"{where}.{key}: {why}, got {_get(cfg, key)!r}")

    for key in ("input_size", "batch_size", "epochs", "val_batch_size", "num_threads"):
        if not _is_int(cfg[key]) or cfg[key] < 1:
            raise bad(key, "must be a positive integer")
    for key in ("patience", "warmup_epochs"):
        if not _is_int(cfg[key]) or cfg[key] < 0:
            raise bad(key, "must be a non-negative integer")
    if cfg["steps_per_epoch"] is not None and (not _is_int(cfg["steps_per_epoch"]) or cfg["steps_per_epoch"] < 1):
        raise bad("steps_per_epoch", "must be a positive integer or null")
    if cfg["warmup_epochs"] >= cfg["epochs"] and cfg["warmup_epochs"] > 0:
        raise bad("warmup_epochs", f"must be smaller than epochs ({cfg['epochs']})")
    for key in ("lr",):
        if not _is_num(cfg[key]) or cfg[key] <= 0:
            raise bad(key, "must be a positive number")
    for key in ("weight_decay", "augmentation.intensity", "loss.dice_weight", "loss.bce_weight"):
        if not _is_num(_get(cfg, key)) or _get(cfg, key) < 0:
            raise bad(key, "must be a non-negative number")
    for key in ("foreground_slice_ratio", "min_lr_ratio"):
        if not _is_num(cfg[key]) or not 0 <= cfg[key] <= 1:
            raise bad(key, "must be a number in [0, 1]")
    if not _is_num(cfg["val_threshold"]) or not 0 < cfg["val_threshold"] < 1:
        raise bad("val_threshold", "must be a number in (0, 1)")
    if cfg["loss"]["dice_weight"] + cfg["loss"]["bce_weight"] <= 0:
        raise bad("loss", "needs a positive dice_weight or bce_weight")
    for key in ("augmentation.flip", "augmentation.rot90", "amp", "deterministic"):
        if not isinstance(_get(cfg, key), bool):
            raise bad(key, "must be true or false")
    if cfg["encoder_weights"] not in (None, "imagenet"):
        raise bad("encoder_weights", "must be null or imagenet")
    if cfg["mode"] not in MODES:
        raise bad("mode", f"must be one of {list(MODES)}")
    return cfg


def resolve_inference_config(inference: dict | None, where: str = "inference") -> dict[str, Any]:
    """Defaults <- the config's ``inference`` block; validated."""
    cfg = {**INFERENCE_DEFAULTS, **(inference or {})}
    unknown = sorted(set(cfg) - set(INFERENCE_DEFAULTS))
    if unknown:
        raise TrainingConfigError(f"{where}: unknown keys {unknown}")
    overlap = cfg["tile_overlap"]
    if not _is_num(overlap) or not 0 <= overlap < 1:
        raise TrainingConfigError(f"{where}.tile_overlap: must be a number in [0, 1), got {overlap!r}")
    for key in ("volume_tile_size", "batch_size"):
        if not _is_int(cfg[key]) or cfg[key] < 1:
            raise TrainingConfigError(f"{where}.{key}: must be a positive integer, got {cfg[key]!r}")
    return cfg


def _get(cfg: dict, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
