"""Prediction folders of four models drawn from one per-lesion error law (exchangeable models: the verdict's
null), or with a planted small-lesion boundary effect, as plain PNG masks for ``lesionbench compare``.

References: ``n_images`` images of ``shape`` with ``lesions`` disc lesions of radius 1-3 px each, centres at
least 14 px apart (so a 3 mm dilation never merges two). Per model and lesion, independently: missed with
probability 0.02, else the disc with its centre moved by a rounded N(0, 0.6) px per axis and its radius by
N(0, 0.2) px (at least 0.8). With ``planted``, the models in it get a 1-px spur of 9 px on every small lesion
(radius < 1.8 px: their common-Q1 HD95 about 6-7 px instead of 1 px), and the other models as many extra
pixels as the first planted model's spurs added, on rays leaving the image's largest lesion, so Dice stays
tied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MODELS = ("model_a", "model_b", "model_c", "model_d")
SPUR = 9
SMALL = 1.8


def _disc(mask: np.ndarray, centre, radius: float) -> None:
    yy, xx = np.ogrid[: mask.shape[0], : mask.shape[1]]
    mask[(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2] = 1


def _spur(mask: np.ndarray, centre, radius: float, direction: int) -> None:
    """A 1-px line of SPUR pixels leaving the disc along one axis direction (0..3)."""
    dy, dx = ((0, 1), (1, 0), (0, -1), (-1, 0))[direction]
    start = int(np.floor(radius)) + 1
    for step in range(start, start + SPUR):
        y, x = centre[0] + dy * step, centre[1] + dx * step
        if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]:
            mask[y, x] = 1


def _pad(pred: np.ndarray, ref: np.ndarray, centre, radius: float, count: int) -> None:
    """Add ``count`` prediction pixels outside the reference on rays leaving the largest lesion (the Dice
    cost of the planted spurs, paid on a large lesion)."""
    for step in range(int(np.ceil(radius)) + 1, max(shape := pred.shape) + 1):
        for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            y, x = centre[0] + dy * step, centre[1] + dx * step
            if count and 0 <= y < shape[0] and 0 <= x < shape[1] and not pred[y, x] and not ref[y, x]:
                pred[y, x] = 1
                count -= 1


def _centres(rng, shape, n, margin=12, gap=14):
    out: list = []
    while len(out) < n:
        c = (int(rng.integers(margin, shape[0] - margin)), int(rng.integers(margin, shape[1] - margin)))
        if all((c[0] - o[0]) ** 2 + (c[1] - o[1]) ** 2 >= gap**2 for o in out):
            out.append(c)
    return out


def null_study(
    root: Path,
    seed: int,
    n_images: int = 40,
    shape=(192, 192),
    lesions: int = 18,
    planted: tuple[str, ...] = (),
) -> tuple[Path, dict[str, Path]]:
    """(reference folder, {model: prediction folder}) of PNG masks (0/255)."""
    rng = np.random.default_rng(seed)
    refs = root / "refs"
    refs.mkdir(parents=True)
    folders = {m: root / m for m in MODELS}
    for folder in folders.values():
        folder.mkdir()
    for i in range(n_images):
        centres = _centres(rng, shape, lesions)
        radii = rng.uniform(1.0, 3.0, lesions)
        ref = np.zeros(shape, np.uint8)
        for c, r in zip(centres, radii):
            _disc(ref, c, r)
        name = f"img{i:03d}.png"
        Image.fromarray(ref * 255).save(refs / name)
        largest = int(np.argmax(radii))
        added = 0  # pixels the spurs of the first planted model added in this image
        for model, folder in folders.items():
            pred = np.zeros(shape, np.uint8)
            spurs = []
            for c, r in zip(centres, radii):
                if rng.random() < 0.02:
                    continue
                moved = (c[0] + round(rng.normal(0, 0.6)), c[1] + round(rng.normal(0, 0.6)))
                _disc(pred, moved, max(0.8, r + rng.normal(0, 0.2)))
                if model in planted and r < SMALL:
                    spurs.append((moved, r, int(rng.integers(4))))
            before = int(pred.sum())
            for moved, r, direction in spurs:
                _spur(pred, moved, r, direction)
            if planted and model == planted[0]:
                added = int(pred.sum()) - before
            if planted and model not in planted:
                _pad(pred, ref, centres[largest], radii[largest], added)
            Image.fromarray(pred * 255).save(folder / name)
    return refs, folders
