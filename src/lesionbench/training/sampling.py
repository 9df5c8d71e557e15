"""Training samples: 2D images or volume slices read lazily from prepared cases, batched and augmented.

Every case is a stack of slices (a 2D image is a stack of one). A sample is an ``input_size`` square
patch of one slice at its prepared resolution (slices smaller than a patch are padded first). With
probability ``foreground_slice_ratio`` the slice is drawn from those holding lesion voxels and the patch is
centred on one of its lesion voxels drawn uniformly (shifted only as far as needed to stay inside the
slice, so that voxel is always in the patch, as nnU-Net's foreground oversampling); otherwise the slice is
drawn from all slices and the patch placed uniformly at random. A slice no larger than a patch is the
patch (padded), with no random placement. So at least that share of each batch shows
a lesion (when the training cases have any). Cases are read memory-mapped, one patch at a time, so a data
set of full-resolution photographs need not fit in memory.

``mode="resize"`` (2D only, the earlier lower-fidelity protocol) instead resizes each whole 2D image to the
patch size once and keeps it in memory. All randomness comes from the ``numpy.random.Generator`` passed
in, so a (seed, epoch) pair fixes the batches exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..io.cases import CaseError, load_case, read_meta
from .transforms import pad_amounts, pad_image, pad_mask, resize_chw, resize_mask

SPLIT_NAMES = ("train", "val", "test")


class TrainingDataError(ValueError):
    """The prepared data or the split cannot be used for training; the message names the file or case."""


def read_split(path: str | os.PathLike) -> dict[str, list[str]]:
    """``split.csv`` as ``{split: sorted case ids}`` (every split name present, maybe empty)."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TrainingDataError(f"{path}: unreadable split table ({exc})") from exc
    missing = {"case_id", "split"} - set(table.columns)
    if missing:
        raise TrainingDataError(f"{path}: missing columns {sorted(missing)}")
    wrong = sorted(set(table["split"]) - set(SPLIT_NAMES))
    if wrong:
        raise TrainingDataError(f"{path}: unknown split names {wrong} (expected train, val, test)")
    return {s: sorted(table.loc[table["split"] == s, "case_id"]) for s in SPLIT_NAMES}


def case_layout(prepared: str | os.PathLike, case_ids: list[str]) -> tuple[int, int]:
    """(ndim, channels) shared by ``case_ids``; raises naming the first case that differs."""
    layout = None
    for cid in case_ids:
        meta = read_meta(prepared, cid)
        this = (int(meta["ndim"]), int(meta["channels"]))
        if layout is None:
            layout = this
        elif this != layout:
            raise TrainingDataError(f"{prepared}/{cid}: ndim/channels {this} differ from the other cases {layout}")
    if layout is None:
        raise TrainingDataError(f"{prepared}: no cases given")
    return layout


@dataclass
class Augmentation:
    flip: bool = True
    rot90: bool = True
    intensity: float = 0.1

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        """Random flips along both axes, a rotation by k*90 degrees, and a mild intensity scale/shift."""
        if self.flip:
            if rng.random() < 0.5:
                image, mask = image[..., ::-1], mask[..., ::-1]
            if rng.random() < 0.5:
                image, mask = image[..., ::-1, :], mask[..., ::-1, :]
        if self.rot90:
            k = int(rng.integers(4))
            if k:
                image, mask = np.rot90(image, k, axes=(-2, -1)), np.rot90(mask, k, axes=(-2, -1))
        image = np.ascontiguousarray(image, np.float32)
        if self.intensity > 0:
            scale = 1.0 + rng.uniform(-self.intensity, self.intensity)
            shift = rng.uniform(-self.intensity, self.intensity)
            image = image * np.float32(scale) + np.float32(shift)
        return image, np.ascontiguousarray(mask)


def patch_corner(centre: int, n: int, size: int) -> int:
    """First index of the ``size`` window along an axis of ``n`` that is centred on ``centre``
    (``centre - size // 2``), shifted as little as needed to lie inside ``[0, n)``; 0 when ``n <= size``."""
    return int(np.clip(centre - size // 2, 0, max(0, n - size)))


class SliceSampler:
    """Random training batches ``(x: (B, C, S, S) float32, y: (B, 1, S, S) float32)`` at ``input_size`` S."""

    def __init__(
        self,
        prepared: str | os.PathLike,
        case_ids: list[str],
        input_size: int,
        foreground_ratio: float,
        augmentation: Augmentation | None = None,
        mode: str = "patch",
    ):
        if not case_ids:
            raise TrainingDataError(f"{prepared}: the split has no training cases")
        if mode not in ("patch", "resize"):
            raise ValueError(f"unknown training mode {mode!r} (expected patch or resize)")
        self.prepared, self.size, self.mode = str(prepared), int(input_size), mode
        self.foreground_ratio = float(foreground_ratio)
        self.augmentation = augmentation
        self.ndim, self.channels = case_layout(prepared, case_ids)
        self.cases: list = []
        self.cached: list[tuple[np.ndarray, np.ndarray] | None] = []  # resize mode: the resized 2D images
        all_slices, fg_slices = [], []
        for i, cid in enumerate(case_ids):
            try:
                case = load_case(prepared, cid, mmap=True)
            except CaseError as exc:
                raise TrainingDataError(str(exc)) from exc
            if self.ndim == 2 and mode == "resize":
                # resize mode: 2D images are resized once to the training size and kept in memory
                img = resize_chw(np.asarray(case.image, np.float32), (self.size, self.size)).numpy()
                msk = resize_mask(np.asarray(case.mask), (self.size, self.size))
                self.cached.append((img, msk))
                all_slices.append((i, 0))
                if msk.any():
                    fg_slices.append((i, 0))
            elif self.ndim == 2:
                self.cached.append(None)
                all_slices.append((i, 0))
                if np.asarray(case.mask).any():
                    fg_slices.append((i, 0))
            else:
                self.cached.append(None)
                per_slice = np.asarray(np.asarray(case.mask).reshape(case.mask.shape[0], -1).any(axis=1))
                all_slices += [(i, k) for k in range(len(per_slice))]
                fg_slices += [(i, int(k)) for k in np.flatnonzero(per_slice)]
            self.cases.append(case)
        self.all_slices = np.asarray(all_slices, np.int64)
        self.fg_slices = np.asarray(fg_slices, np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        """Number of training slices (volumes) or images (2D)."""
        return len(self.all_slices)

    def _slice(self, i: int, k: int, foreground: bool, rng: np.random.Generator):
        cached = self.cached[i]
        if cached is not None:
            return cached
        case = self.cases[i]
        image, mask = (case.image, case.mask) if self.ndim == 2 else (case.image[:, k], case.mask[k])
        s = self.size
        h, w = mask.shape
        if h <= s and w <= s:  # the whole slice is the patch: nothing to place (and no random draw)
            top = left = 0
        elif foreground:
            ys, xs = np.nonzero(mask)
            j = int(rng.integers(len(ys)))
            top, left = patch_corner(int(ys[j]), h, s), patch_corner(int(xs[j]), w, s)
        else:
            top, left = int(rng.integers(max(1, h - s + 1))), int(rng.integers(max(1, w - s + 1)))
        # only the patch is read from the memory-mapped case
        img = np.asarray(image[:, top : top + s, left : left + s], np.float32)
        msk = np.asarray(mask[top : top + s, left : left + s], np.uint8)
        if img.shape[-2:] != (s, s):  # a slice smaller than a patch: padded as a whole
            pads = pad_amounts(msk.shape, (s, s))
            img, msk = pad_image(img, pads), pad_mask(msk, pads)
        return img, msk

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s = self.size
        x = np.empty((batch_size, self.channels, s, s), np.float32)
        y = np.empty((batch_size, 1, s, s), np.float32)
        for b in range(batch_size):
            foreground = len(self.fg_slices) > 0 and bool(rng.random() < self.foreground_ratio)
            pool = self.fg_slices if foreground else self.all_slices
            i, k = pool[int(rng.integers(len(pool)))]
            img, msk = self._slice(int(i), int(k), foreground, rng)
            if self.augmentation is not None:
                img, msk = self.augmentation(img, msk, rng)
            x[b] = img
            y[b, 0] = msk
        return x, y
