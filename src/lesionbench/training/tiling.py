"""Sliding-window prediction with Gaussian importance weighting, as nnU-Net does it.

An image larger than the tile is covered by overlapping square tiles. Along each axis of ``n`` pixels the
tiles of size ``t`` start at

    k = ceil((n - t) / (t * (1 - overlap))) + 1 tiles,   start_i = round(i * (n - t) / (k - 1)),  i < k

(nnU-Net's ``compute_steps_for_sliding_window``): the first tile starts at 0, the last ends at ``n``, and
neighbours overlap by at least ``overlap * t`` pixels. Each tile's logits are weighted by a Gaussian
centred on the tile, ``w(y, x) = exp(-((y - c)^2 + (x - c)^2) / (2 sigma^2))`` with ``c = (t - 1) / 2`` and
``sigma = t / 8``, normalised to a maximum of 1, because a fully convolutional network is least reliable
near a tile's border. The prediction of a pixel is ``sum_tiles(w * logit) / sum_tiles(w)``, so a model
that outputs a constant logit predicts that constant everywhere (the weights normalise). An image with one
tile is returned unweighted. Tiles are accumulated in a fixed order, so the batch size (tiles per forward
pass) never changes a result.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import torch

SIGMA_SCALE = 1.0 / 8  # nnU-Net's Gaussian: sigma = tile size / 8


def tile_starts(n: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of the tiles covering ``n`` pixels with tiles of ``tile`` (``n >= tile``)."""
    if n < tile:
        raise ValueError(f"an axis of {n} pixels is shorter than the tile ({tile}); pad it first")
    if not 0 <= overlap < 1:
        raise ValueError(f"tile overlap must be in [0, 1), got {overlap}")
    if n == tile:
        return [0]
    k = math.ceil((n - tile) / (tile * (1 - overlap))) + 1
    step = (n - tile) / (k - 1)
    return [round(i * step) for i in range(k)]


def gaussian_weights(tile: int, sigma_scale: float = SIGMA_SCALE) -> torch.Tensor:
    """The ``(tile, tile)`` float32 importance map: a centred Gaussian with ``sigma = tile * sigma_scale``,
    maximum 1, positive everywhere (so every covered pixel has a positive weight sum)."""
    c, sigma = (tile - 1) / 2.0, tile * sigma_scale
    axis = np.exp(-((np.arange(tile) - c) ** 2) / (2 * sigma * sigma))
    w = np.outer(axis, axis)
    w /= w.max()
    w = np.maximum(w, np.finfo(np.float32).tiny * 1e6)  # keep the corners strictly positive in float32
    return torch.from_numpy(w.astype(np.float32))


def tile_grid(shape: tuple[int, int], tile: int, overlap: float) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of every tile over an ``(H, W)`` plane with ``H, W >= tile``, row-major."""
    return list(product(tile_starts(shape[0], tile, overlap), tile_starts(shape[1], tile, overlap)))


def sliding_window_logits(forward, image: torch.Tensor, tile: int, overlap: float, batch_size: int) -> torch.Tensor:
    """Logits ``(H, W)`` (float32) of one ``(C, H, W)`` plane with ``H, W >= tile`` by Gaussian-weighted tiles.

    ``forward`` maps a ``(B, C, tile, tile)`` batch to ``(B, 1, tile, tile)`` logits (float32) on the
    device the result is accumulated on; ``image`` may stay on the CPU (tiles are moved batch by batch).
    """
    h, w = image.shape[-2:]
    corners = tile_grid((h, w), tile, overlap)
    if len(corners) == 1:
        return forward(image[None, :, :tile, :tile])[0, 0].float()
    total = weight_sum = weights = None
    for b0 in range(0, len(corners), batch_size):
        batch = corners[b0 : b0 + batch_size]
        logits = forward(torch.stack([image[:, t : t + tile, l : l + tile] for t, l in batch]))[:, 0].float()
        if total is None or weight_sum is None or weights is None:  # the first batch fixes the device
            weights = gaussian_weights(tile).to(logits.device)
            total = torch.zeros((h, w), dtype=torch.float32, device=logits.device)
            weight_sum = torch.zeros_like(total)
        for (top, left), tile_logits in zip(batch, logits):  # fixed order: independent of the batch size
            total[top : top + tile, left : left + tile] += tile_logits * weights
            weight_sum[top : top + tile, left : left + tile] += weights
    assert total is not None and weight_sum is not None
    return total / weight_sum
