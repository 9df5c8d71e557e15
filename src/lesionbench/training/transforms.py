"""Geometry shared by training, validation and inference, so a model always sees inputs at its training scale.

- 2D images are resized to ``input_size x input_size`` (bilinear, antialiased when shrinking); inference
  resizes back to the image's own size, so predictions live at the prepared resolution.
- Volume slices keep their native resolution: training crops/pads them to ``input_size``; validation and
  inference run each whole slice, padded up to a multiple of the model's input divisor, and crop back.
  Padding is centred and uses each channel's minimum (the background intensity) for images, 0 for masks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


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


def pad_amounts(shape: tuple[int, int], target: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
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
    out[..., pads[0][0]:pads[0][0] + image.shape[-2], pads[1][0]:pads[1][0] + image.shape[-1]] = image
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


@torch.inference_mode()
def predict_probabilities(model: torch.nn.Module, image: np.ndarray, input_size: int, divisor: int,
                          device: torch.device | str = "cpu", batch_size: int = 16,
                          amp: bool = False) -> np.ndarray:
    """Foreground probability of a whole prepared image ``(C, H, W)`` or volume ``(C, D, H, W)``.

    2D: resize to the training size, predict, resize the logits back, sigmoid. 3D: slice by slice along
    axis 1 (the slice axis), each slice padded to a multiple of ``divisor``; slices are stacked back.
    Returns float32 in [0, 1] with the image's spatial shape. The model is put in eval mode.
    """
    device = torch.device(device)
    model.eval()
    if image.ndim == 3:
        h, w = image.shape[-2:]
        x = resize_chw(np.asarray(image, np.float32), (input_size, input_size))[None]
        logits = _forward(model, x, device, amp).cpu()
        logits = resize_chw(logits, (h, w)) if (h, w) != (input_size, input_size) else logits
        return torch.sigmoid(logits)[0, 0].numpy().astype(np.float32)
    if image.ndim != 4:
        raise ValueError(f"expected an image (C, H, W) or a volume (C, D, H, W), got shape {image.shape}")
    c, d, h, w = image.shape
    pads = pad_amounts((h, w), (round_up(h, divisor), round_up(w, divisor)))
    out = np.empty((d, h, w), np.float32)
    for k0 in range(0, d, batch_size):
        k1 = min(d, k0 + batch_size)
        slices = np.ascontiguousarray(np.moveaxis(np.asarray(image[:, k0:k1], np.float32), 1, 0))  # (b, C, H, W)
        x = torch.from_numpy(pad_image(slices, pads))
        logits = _forward(model, x, device, amp)
        logits = logits[:, 0, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w]
        out[k0:k1] = torch.sigmoid(logits).cpu().numpy()
    return out
