"""Inference: the best checkpoint of a trained model applied to every test case, written as predictions.

For each test case of ``split.csv``: foreground probability of the whole image or volume
(:func:`lesionbench.training.transforms.predict_probabilities`), then the shared postprocessing
(threshold, removal of small components; ``config["postprocessing"]``), then
:func:`lesionbench.io.predictions.write_prediction` (PNG for 2D, NIfTI with the case's spacing and affine
for 3D).

Geometry follows training exactly, and is the one function validation during training uses too, so it
is identical for every model:
- 2D images trained on native-resolution patches (``training.mode: patch``, the default) are predicted
  whole at their prepared resolution by sliding windows of the patch size, overlapping by
  ``inference.tile_overlap``, each tile's logits weighted by a Gaussian (sigma = tile / 8, as nnU-Net)
  (:mod:`lesionbench.training.tiling`). Images trained with ``training.mode: resize`` are resized to the
  training size and their logits resized back (bilinear) before the sigmoid, as they were trained.
- Volumes were trained on native-resolution slices, so each whole slice is predicted at native resolution
  (padded to a multiple of the model's input divisor, cropped back) and the slices are stacked back into
  the volume; slices with a side above ``inference.volume_tile_size`` are tiled like 2D images.
A checkpoint without a recorded mode predates patch training and is predicted in ``resize`` mode.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from .io.cases import load_case, read_meta
from .io.predictions import write_prediction
from .models import build_model
from .postprocess import postprocess
from .training.config import resolve_inference_config
from .training.loop import CHECKPOINT_FORMAT, resolve_device
from .training.sampling import read_split
from .training.transforms import predict_probabilities

log = logging.getLogger("lesionbench.inference")


class CheckpointError(ValueError):
    """A checkpoint cannot be used for inference; the message names the file."""


def load_model(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model saved in ``best.pt`` (in eval mode on ``device``); returns (model, checkpoint info)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint missing")
    try:
        info = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    needed = {"model_name", "model_config", "in_channels", "input_size", "input_divisor", "state_dict"}
    if not isinstance(info, dict) or info.get("format") != CHECKPOINT_FORMAT or needed - set(info):
        raise CheckpointError(f"{path}: not a lesionbench best.pt (missing {sorted(needed - set(info or {}))})")
    model = build_model(info["model_name"], info["model_config"], info["in_channels"], encoder_weights=None)
    try:
        model.load_state_dict(info["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model it names ({exc})") from exc
    model.to(torch.device(device)).eval()
    return model, {k: v for k, v in info.items() if k != "state_dict"}


def predict_case(
    model: torch.nn.Module,
    info: dict,
    image: np.ndarray,
    threshold: float,
    min_component_voxels: int,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    amp: bool = False,
    inference: dict | None = None,
) -> np.ndarray:
    """Binary, postprocessed prediction (bool, spatial shape of ``image``) of one prepared image/volume.

    ``inference`` is the config's inference block (tile overlap, volume tile size, tiles per pass);
    ``batch_size``, when given, overrides its ``batch_size``."""
    tiling = resolve_inference_config(inference)
    prob = predict_probabilities(
        model,
        image,
        int(info["input_size"]),
        int(info["input_divisor"]),
        device,
        int(batch_size or tiling["batch_size"]),
        amp,
        mode=info.get("mode", "resize"),
        tile_overlap=tiling["tile_overlap"],
        volume_tile_size=tiling["volume_tile_size"],
    )
    return postprocess(prob, threshold, min_component_voxels)


def predict_dataset(
    checkpoint: str | os.PathLike,
    prepared: str | os.PathLike,
    split_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    postprocessing: dict,
    device: str = "auto",
    threads: int | None = None,
    batch_size: int | None = None,
    split: str = "test",
    inference: dict | None = None,
) -> list[Path]:
    """Write the prediction of every ``split`` case into ``out_dir``; returns the written paths.

    ``postprocessing`` is the config block (``threshold``, ``min_component_voxels``), ``inference`` the
    sliding-window block (defaults in :data:`lesionbench.training.config.INFERENCE_DEFAULTS`). Mixed
    precision is used only on CUDA.
    """
    tiling = resolve_inference_config(inference)
    if threads:
        torch.set_num_threads(int(threads))
    dev = resolve_device(device)
    model, info = load_model(checkpoint, dev)
    threshold = float(postprocessing.get("threshold", 0.5))
    min_voxels = int(postprocessing.get("min_component_voxels", 0))
    case_ids = read_split(split_csv)[split]
    if not case_ids:
        raise ValueError(f"{split_csv}: no {split} cases to predict")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for cid in case_ids:
        case = load_case(prepared, cid, mmap=True)
        if case.image.shape[0] != info["in_channels"]:
            raise ValueError(
                f"{prepared}/{cid}: {case.image.shape[0]} image channels, but {checkpoint} was "
                f"trained on {info['in_channels']}"
            )
        mask = predict_case(
            model, info, case.image, threshold, min_voxels, dev, batch_size, amp=dev.type == "cuda", inference=tiling
        )
        written.append(write_prediction(mask, read_meta(prepared, cid), out_dir))
        log.info("%s: %d foreground voxels", written[-1], int(mask.sum()))
    return written
