"""Control predictions of one data set: every test reference lesion perturbed, one shared detection behaviour.

A control is ``(name, perturbation, seed)`` (``ControlSpec``). Its prediction of a test case is the union over
the case's reference lesions of the perturbed lesion (``perturbations.perturb``), with three rules that hold
detection equal for every control so only delineation differs:

1. **Shared drop.** The same lesions are left out (predicted as nothing) by every control: exactly
   ``round(drop_fraction x n)`` of the data set's n test lesions, drawn with probability proportional to
   1 / voxels (``dropped_lesions``), so mostly small ones, as real models miss them.
2. **Undetectable lesions stay as they are.** A lesion with fewer evaluable voxels (outside the ignore mask)
   than the postprocessing's ``min_component_voxels`` is copied unchanged: no prediction confined to it
   survives postprocessing, so it is missed by every control alike.
3. **Detection guard.** If a perturbation leaves no predicted component of at least ``min_component_voxels``
   evaluable voxels overlapping its lesion (a lesion thinner than the opening, a fragment too small, a
   lesion smoothed away), the lesion's ``core`` is added: its ``min_component_voxels`` deepest voxels,
   grown as one connected piece from the deepest voxel. The lesion is then detected, with the boundary
   error of a minimal prediction.

Everything is computed on per-lesion crops; a lesion's geometry (``perturbations.Lesion``) is computed once
and reused for every control and strength.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..components import label_components
from ..postprocess import postprocess
from .perturbations import PERTURBATIONS, Lesion, in_plane_direction, lesion_rng, margin_voxels, perturb

log = logging.getLogger(__name__)


class ControlError(ValueError):
    """A control cannot be built as configured; the message names the data set and the problem."""


@dataclass(frozen=True)
class ControlSpec:
    """One simulated model: its name (the ``model`` column of its tables), perturbation, seed and role
    (``positive``: a planted failure mode; ``negative``: a replicate of the negative-control pair)."""

    name: str
    perturbation: str
    seed: int
    role: str = "positive"

    def __post_init__(self):
        if self.perturbation not in PERTURBATIONS:
            raise ControlError(
                f"control {self.name!r}: unknown perturbation {self.perturbation!r}; expected one "
                f"of {', '.join(PERTURBATIONS)}"
            )


@dataclass
class ReferenceCase:
    """A test case's reference: mask (bool), spacing (mm per axis), optional ignore mask (bool)."""

    case_id: str
    mask: np.ndarray
    spacing: tuple[float, ...]
    ignore: np.ndarray | None = None

    def __post_init__(self):
        self.mask = np.asarray(self.mask) != 0
        self.ignore = None if self.ignore is None else np.asarray(self.ignore) != 0
        self.spacing = tuple(float(s) for s in self.spacing)
        if self.mask.ndim not in (2, 3) or len(self.spacing) != self.mask.ndim:
            raise ControlError(
                f"case {self.case_id!r}: mask shape {self.mask.shape} and spacing {self.spacing} "
                f"do not describe a 2D or 3D image"
            )
        if self.ignore is not None and self.ignore.shape != self.mask.shape:
            raise ControlError(f"case {self.case_id!r}: ignore shape {self.ignore.shape} != mask {self.mask.shape}")

    def evaluable(self) -> np.ndarray:
        """The reference as every metric sees it: the mask without the ignore voxels."""
        return self.mask if self.ignore is None else self.mask & ~self.ignore


def dropped_lesions(lesions: dict, drop_fraction: float, drop_seed: int, dataset: str) -> set:
    """The shared drop: ``round(drop_fraction * n)`` of the n lesions ``{(case_id, lesion_id): voxels}``,
    drawn without replacement with probability proportional to 1 / voxels (small lesions are the ones models
    miss) by a generator seeded with ``(drop_seed, crc32(dataset))`` over the sorted keys. The same set for
    every control of the data set."""
    if not 0.0 <= drop_fraction < 1.0:
        raise ControlError(f"drop_fraction must lie in [0, 1), got {drop_fraction!r}")
    keys = sorted(lesions)
    n_drop = round(drop_fraction * len(keys))
    if n_drop == 0:
        return set()
    weights = 1.0 / np.array([max(int(lesions[k]), 1) for k in keys], float)
    rng = np.random.default_rng(np.random.SeedSequence([int(drop_seed), zlib.crc32(dataset.encode())]))
    chosen = rng.choice(len(keys), size=n_drop, replace=False, p=weights / weights.sum())
    return {keys[i] for i in chosen}


def core(mask: np.ndarray, depth: np.ndarray, n: int) -> np.ndarray:
    """``n`` voxels of ``mask`` grown from its deepest voxel (largest ``depth``, first in C order on ties):
    repeatedly the deepest voxel adjacent (full connectivity) to the piece so far. One connected piece."""
    out = np.zeros(mask.shape, bool)
    cand = np.where(mask, depth, -np.inf)
    start = np.unravel_index(int(np.argmax(cand)), mask.shape)
    out[start] = True
    offsets = np.array([o for o in np.ndindex(*(3,) * mask.ndim) if any(v != 1 for v in o)]) - 1
    frontier = {}
    taken = 1

    def add_neighbours(p):
        for o in offsets:
            q = tuple(np.asarray(p) + o)
            if all(0 <= q[a] < mask.shape[a] for a in range(mask.ndim)) and mask[q] and not out[q]:
                frontier[q] = depth[q]

    add_neighbours(start)
    while taken < n and frontier:
        # deepest first; ties by C order, so the piece is deterministic
        q = min(frontier, key=lambda k: (-frontier[k], k))
        del frontier[q]
        if out[q]:
            continue
        out[q] = True
        taken += 1
        add_neighbours(q)
    return out


@dataclass
class _LesionCrop:
    case_index: int
    lesion_id: int
    lo: np.ndarray  # crop origin in the image (may be negative: the crop extends past the edge)
    lesion: Lesion
    inside: np.ndarray  # crop voxels that lie in the image and outside the ignore mask
    margin: int
    evaluable_voxels: int


@dataclass
class ControlBuilder:
    """Builds control predictions of one data set's test cases.

    ``min_component_voxels`` is the postprocessing's smallest kept component (DESIGN section 3); it sets the
    detection rules of the module docstring.
    """

    dataset: str
    cases: list[ReferenceCase]
    drop_fraction: float
    drop_seed: int
    min_component_voxels: int = 0
    threshold: float = 0.5
    _crops: list = field(default_factory=list, repr=False)
    _directions: dict = field(default_factory=dict, repr=False)
    _ties: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if not self.cases:
            raise ControlError(f"data set {self.dataset!r}: no test cases to build controls from")
        sizes, found = {}, []
        for ci, case in enumerate(self.cases):
            labels, n = label_components(case.mask)
            counts = np.bincount(labels.ravel(), minlength=n + 1)
            for lid in range(1, n + 1):
                sizes[(case.case_id, lid)] = int(counts[lid])
                found.append((ci, lid, labels))
        self.n_lesions = len(sizes)
        self.dropped = dropped_lesions(sizes, self.drop_fraction, self.drop_seed, self.dataset)
        self.unchanged = []  # (case_index, lesion mask in the image) of lesions too small to detect
        for ci, lid, labels in found:
            if (self.cases[ci].case_id, lid) in self.dropped:
                continue
            self._crops.append(self._make_crop(ci, lid, labels == lid, margin=2))
        keep = [c for c in self._crops if c.evaluable_voxels >= max(int(self.min_component_voxels), 1)]
        for c in self._crops:
            if c.evaluable_voxels < max(int(self.min_component_voxels), 1):
                self.unchanged.append((c.case_index, c))
        self._crops = keep
        log.info(
            "%s: %d test cases, %d test lesions, %d dropped by every control, %d too small to detect",
            self.dataset,
            len(self.cases),
            self.n_lesions,
            len(self.dropped),
            len(self.unchanged),
        )

    # -- crops -------------------------------------------------------------------------------------------

    def _make_crop(self, ci: int, lid: int, lesion_mask: np.ndarray, margin: int) -> _LesionCrop:
        case = self.cases[ci]
        idx = np.argwhere(lesion_mask)
        lo = idx.min(axis=0) - margin
        hi = idx.max(axis=0) + 1 + margin
        shape = tuple(int(h - l) for l, h in zip(lo, hi))
        crop = np.zeros(shape, bool)
        inside = np.zeros(shape, bool)
        tie = np.full(shape, 0.5)
        src, dst = self._overlap(lo, hi, case.mask.shape)
        crop[dst] = lesion_mask[src]
        inside[dst] = True if case.ignore is None else ~case.ignore[src]
        tie[dst] = self._tie_field(ci)[src]
        return _LesionCrop(
            ci, lid, lo, Lesion(crop, case.spacing, tie), inside, margin, int(np.count_nonzero(crop & inside))
        )

    def _tie_field(self, ci: int) -> np.ndarray:
        """Uniform [0, 1) per voxel of case ``ci``, seeded by its case id (``perturbations.Lesion.tie``); a
        field over the whole image, so a voxel's value does not depend on how its lesion is cropped."""
        field_ = self._ties.get(ci)
        if field_ is None:
            case = self.cases[ci]
            rng = np.random.default_rng(np.random.SeedSequence([zlib.crc32(case.case_id.encode())]))
            field_ = rng.random(case.mask.shape)
            self._ties[ci] = field_
        return field_

    @staticmethod
    def _overlap(lo, hi, shape):
        """(image slices, crop slices) of the part of the crop box [lo, hi) inside an image of ``shape``."""
        a = np.maximum(lo, 0)
        b = np.minimum(hi, shape)
        return (
            tuple(slice(int(x), int(y)) for x, y in zip(a, b)),
            tuple(slice(int(x - l), int(y - l)) for x, y, l in zip(a, b, lo)),
        )

    def _crop_for(self, k: int, perturbation: str, strength: float) -> _LesionCrop:
        c = self._crops[k]
        need = margin_voxels(perturbation, strength, c.lesion.spacing)
        if need > c.margin:
            mask = np.zeros(self.cases[c.case_index].mask.shape, bool)
            hi = c.lo + np.asarray(c.lesion.mask.shape)
            src, dst = self._overlap(c.lo, hi, mask.shape)
            mask[src] = c.lesion.mask[dst]
            c = self._make_crop(c.case_index, c.lesion_id, mask, margin=max(need, 2 * c.margin))
            self._crops[k] = c
        return c

    def direction(self, seed: int, k: int) -> np.ndarray:
        c = self._crops[k]
        key = (seed, c.case_index, c.lesion_id)
        u = self._directions.get(key)
        if u is None:
            u = in_plane_direction(c.lesion.mask.ndim, lesion_rng(seed, self.cases[c.case_index].case_id, c.lesion_id))
            self._directions[key] = u
        return u

    # -- predictions -------------------------------------------------------------------------------------

    def perturbed_lesion(self, k: int, spec: ControlSpec, strength: float) -> tuple[np.ndarray, _LesionCrop]:
        """Lesion ``k``'s predicted crop under ``spec`` at ``strength`` mm, after the detection guard."""
        c = self._crop_for(k, spec.perturbation, strength)
        pred = perturb(c.lesion, spec.perturbation, strength, self.direction(spec.seed, k)) & c.inside
        m = int(self.min_component_voxels)
        if not self._detected(pred, c.lesion.mask, m):
            pred |= core(c.lesion.mask & c.inside, c.lesion.depth, max(m, 1))
        return pred, c

    @staticmethod
    def _detected(pred: np.ndarray, lesion: np.ndarray, m: int) -> bool:
        if not (pred & lesion).any():
            return False
        if m <= 1:
            return True
        labels, n = label_components(pred)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        hit = np.unique(labels[pred & lesion])
        return bool((sizes[hit[hit > 0]] >= m).any())

    def predictions(self, spec: ControlSpec, strength: float) -> list[np.ndarray]:
        """The control's prediction (bool, image shape) of every test case, in case order."""
        out = [np.zeros(c.mask.shape, bool) for c in self.cases]
        for k in range(len(self._crops)):
            pred, c = self.perturbed_lesion(k, spec, strength)
            target = out[c.case_index]
            src, dst = self._overlap(c.lo, c.lo + np.asarray(pred.shape), target.shape)
            target[src] |= pred[dst]
        for ci, c in self.unchanged:
            target = out[ci]
            src, dst = self._overlap(c.lo, c.lo + np.asarray(c.lesion.mask.shape), target.shape)
            target[src] |= c.lesion.mask[dst]
        return out

    def case_dice(self, predictions: list[np.ndarray]) -> np.ndarray:
        """Case-level Dice of each prediction exactly as the evaluation computes it: ignore voxels removed
        from both masks, the prediction postprocessed (threshold, ``min_component_voxels``), both empty = 1."""
        out = np.empty(len(self.cases))
        for i, (case, pred) in enumerate(zip(self.cases, predictions)):
            ref = case.evaluable()
            p = pred if case.ignore is None else pred & ~case.ignore
            p = postprocess(p, self.threshold, int(self.min_component_voxels))
            total = int(np.count_nonzero(ref)) + int(np.count_nonzero(p))
            out[i] = 1.0 if total == 0 else 2.0 * np.count_nonzero(ref & p) / total
        return out

    def mean_dice(self, spec: ControlSpec, strength: float) -> float:
        """Overall Dice of the control at ``strength``: the mean case-level Dice over the test cases."""
        return float(self.case_dice(self.predictions(spec, strength)).mean())
