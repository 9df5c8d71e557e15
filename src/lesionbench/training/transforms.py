"""Geometry shared by training, validation and inference, so a model always sees inputs at its training scale.

- ``mode: patch`` (the default): 2D images keep their prepared resolution. Training crops
  ``input_size x input_size`` patches (padding smaller images); validation and inference predict the whole
  image by Gaussian-weighted sliding windows of ``input_size`` tiles (:mod:`.tiling`).
- ``mode: resize`` (the earlier, lower-fidelity choice): 2D images are resized to ``input_size x
  input_size`` (bilinear, antialiased when shrinking) and the logits resized back, so small lesions are
  limited by resampling; kept to reproduce earlier results.
- Volume slices keep their native resolution in both modes: training crops/pads them to ``input_size``;
  validation and inference run each whole slice, padded up to a multiple of the model's input divisor, and
  crop back, unless a side exceeds ``volume_tile_size``: such slices are predicted by the same sliding
  windows with tiles of ``volume_tile_size`` (rounded up to the divisor).
  Padding is centred and uses each channel's minimum (the background intensity) for images, 0 for masks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import INFERENCE_DEFAULTS
from .tiling import sliding_window_logits


def resize_chw(image: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(C, H, W)`` or ``(N, C, H, W)`` to ``size`` (antialiased when shrinking)."""
    if isinstance(image, np.ndarray):  # copy: memory-mapped arrays are read-only
        x = torch.from_numpy(np.array(image, dtype=np.float32))
    else:
        x = torch.as_tensor(image, dtype=torch.float32)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[None]
    if tuple(x.shape[-2:]) != tuple(size):
        shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)
    return x[0] if squeeze else x


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a binary ``(H, W)`` mask: bilinear on 0/1, then ``>= 0.5``; returns uint8."""
    if tuple(mask.shape) == tuple(size):
        return np.asarray(mask, np.uint8)
    soft = resize_chw(np.asarray(mask, np.float32)[None], size)[0]
    return (soft >= 0.5).numpy().astype(np.uint8)


def pad_amounts(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Centred padding ``((top, bottom), (left, right))`` taking ``shape`` up to at least ``target``."""
    out = []
    for n, t in zip(shape, target):
        extra = max(0, t - n)
        out.append((extra // 2, extra - extra // 2))
    return tuple(out)


def pad_image(image: np.ndarray, pads) -> np.ndarray:
    """Pad the last two axes of ``(..., C, H, W)`` with each channel's minimum over its own slice."""
    if not any(sum(p) for p in pads):
        return image
    fill = image.min(axis=(-2, -1), keepdims=True)
    shape = image.shape[:-2] + (image.shape[-2] + sum(pads[0]), image.shape[-1] + sum(pads[1]))
    out = np.broadcast_to(fill, shape).astype(np.float32, copy=True)
    out[..., pads[0][0] : pads[0][0] + image.shape[-2], pads[1][0] : pads[1][0] + image.shape[-1]] = image
    return out


def pad_mask(mask: np.ndarray, pads) -> np.ndarray:
    if not any(sum(p) for p in pads):
        return mask
    return np.pad(mask, tuple((0, 0) for _ in range(mask.ndim - 2)) + tuple(pads))


def round_up(n: int, divisor: int) -> int:
    return -(-int(n) // int(divisor)) * int(divisor)


def _forward(model: torch.nn.Module, x: torch.Tensor, device: torch.device, amp: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if amp and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            return model(x).float()
    return model(x).float()


def _pad_plane(plane: np.ndarray, size: tuple[int, int]) -> tuple[torch.Tensor, tuple]:
    """``(C, H, W)`` padded (centred, channel minimum) to at least ``size``; returns it and the padding."""
    pads = pad_amounts(plane.shape[-2:], size)
    padded = np.array(pad_image(np.asarray(plane, np.float32), pads), np.float32)  # a copy: mmaps are read-only
    return torch.from_numpy(padded), pads


def _crop(logits: torch.Tensor, pads, h: int, w: int) -> torch.Tensor:
    return logits[..., pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + w]


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module,
    image: np.ndarray,
    input_size: int,
    divisor: int,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
    amp: bool = False,
    *,
    mode: str = "patch",
    tile_overlap: float = INFERENCE_DEFAULTS["tile_overlap"],
    volume_tile_size: int = INFERENCE_DEFAULTS["volume_tile_size"],
) -> np.ndarray:
    """Foreground probability of a whole prepared image ``(C, H, W)`` or volume ``(C, D, H, W)``.

    2D, ``mode="patch"``: the image, padded to at least ``input_size`` per side, is predicted by
    Gaussian-weighted sliding windows of ``input_size`` tiles overlapping by ``tile_overlap``, then cropped
    back. 2D, ``mode="resize"``: resize to the training size, predict, resize the logits back.
    3D: slice by slice along axis 1 (the slice axis), ``batch_size`` slices per pass, each slice padded to a
    multiple of ``divisor``; a slice with a side above ``volume_tile_size`` is tiled as a 2D image is (tiles
    of ``volume_tile_size`` rounded up to ``divisor``). ``batch_size`` is also the number of tiles per
    pass; it never changes the result. Returns float32 in [0, 1] with the image's spatial shape. The model
    is put in eval mode.
    """
    device = torch.device(device)
    model.eval()

    def forward(x):
        return _forward(model, x, device, amp)

    if image.ndim == 3:
        h, w = image.shape[-2:]
        if mode == "resize":
            x = resize_chw(np.asarray(image, np.float32), (input_size, input_size))[None]
            logits = forward(x).cpu()
            logits = resize_chw(logits, (h, w)) if (h, w) != (input_size, input_size) else logits
            return torch.sigmoid(logits)[0, 0].numpy().astype(np.float32)
        if mode != "patch":
            raise ValueError(f"unknown training mode {mode!r} (expected patch or resize)")
        x, pads = _pad_plane(image, (input_size, input_size))
        logits = sliding_window_logits(forward, x, input_size, tile_overlap, batch_size)
        return torch.sigmoid(_crop(logits, pads, h, w)).cpu().numpy().astype(np.float32)
    if image.ndim != 4:
        raise ValueError(f"expected an image (C, H, W) or a volume (C, D, H, W), got shape {image.shape}")
    _, d, h, w = image.shape
    out = np.empty((d, h, w), np.float32)
    if max(h, w) > volume_tile_size:
        tile = round_up(volume_tile_size, divisor)
        for k in range(d):
            x, pads = _pad_plane(image[:, k], (tile, tile))
            logits = sliding_window_logits(forward, x, tile, tile_overlap, batch_size)
            out[k] = torch.sigmoid(_crop(logits, pads, h, w)).cpu().numpy()
        return out
    pads = pad_amounts((h, w), (round_up(h, divisor), round_up(w, divisor)))
    for k0 in range(0, d, batch_size):
        k1 = min(d, k0 + batch_size)
        slices = np.ascontiguousarray(np.moveaxis(np.asarray(image[:, k0:k1], np.float32), 1, 0))  # (b, C, H, W)
        x = torch.from_numpy(pad_image(slices, pads))
        logits = _crop(forward(x)[:, 0], pads, h, w)
        out[k0:k1] = torch.sigmoid(logits).cpu().numpy()
    return out
