"""Per-lesion perturbations with a known failure mode: the delineation errors of the control models.

Each perturbation maps one reference lesion (a boolean crop holding only that lesion, with background
around it) to a predicted lesion of the same crop. Its strength ``s`` is a physical length in mm, so one
strength means the same error on every data set and every lesion, and the geometry is spacing-aware: every
distance below is Euclidean between voxel centres in mm (index x spacing). ``s = 0`` returns the lesion
unchanged. Volumes use the prepared layout (axis 0 = slice axis); "in-plane" means the last two axes.

- ``offset``: translation by ``s`` mm along a seeded in-plane direction u (a systematic contour offset, e.g.
  a registration shift). The lesion's signed distance map (``Lesion.sdf``, negative inside) is resampled at
  ``x - s u`` with linear interpolation and thresholded at <= 0. Every boundary point moves by ``s``, so
  HD95 ~= s whatever the lesion's size, while the Dice lost grows as s / radius.
- ``smoothing``: over-smoothed boundaries, a resolution limit: the lesion seen through a Gaussian
  point-spread function of standard deviation ``s`` mm per axis, thresholded at half its peak (the
  half-maximum contour). On a lesion much larger than s the peak is 1 and the boundary moves by about
  curvature x s^2 / 2 (corners cut, concavities filled); a lesion much smaller than s becomes a blob of the
  blur's own size (radius ~= 1.18 s, the half maximum of the Gaussian) whatever its shape and size. Never
  empty.
- ``protrusions``: missed thin protrusions: the lesion voxels where the indicator blurred by ``s`` is below
  0.5 are removed, nothing is added. A strip of width w survives iff w >= 1.35 s, so thin protrusions (and
  lesions that thin) are lost while thick parts keep their boundary up to rounded corners. (A binary
  opening with a ball of radius s is the textbook version; its result moves in whole voxel shells at the
  discrete voxel distances, so its Dice cannot be calibrated finely; the blur threshold is continuous in s.)
- ``fragmentation``: two perpendicular cracks of width ``s`` mm through the lesion centroid (in-plane
  lines in 2D, planes containing the slice axis in 3D; seeded orientation u): voxels whose centre lies
  within ``s / 2`` of a crack are removed, splitting the lesion into up to four fragments. Crack edges lie
  inside the reference, up to the lesion's radius from its border, so HD95 grows with the lesion's size
  while the Dice lost is only the crack area.
- ``undersegmentation``: asymmetric under-segmentation: the cap of the lesion beyond a plane perpendicular
  to a seeded in-plane direction u, ``s`` mm below the lesion's extreme point along u, is removed; the
  opposite side is exact. Reference border points of the cap lie up to ``s`` from the prediction, so
  HD95 ~= s on one side only (ASD stays small).

Randomness (directions, orientations) comes from ``lesion_rng``: a generator seeded by the control's seed,
the case id and the lesion id, so a lesion's perturbation does not depend on any other lesion or case.
"""

from __future__ import annotations

import zlib
from dataclasses import InitVar, dataclass, field

import numpy as np
from scipy import ndimage

PERTURBATIONS = ("offset", "smoothing", "protrusions", "fragmentation", "undersegmentation")
# Scale of the tie-break of thresholds (``Lesion.tie``): mm for distances, plain for blurred indicators.
TIE = 1e-6
# The perturbations that draw a direction from their seed (the others are the same for every seed).
SEEDED = ("offset", "fragmentation", "undersegmentation")


def lesion_rng(seed: int, case_id: str, lesion_id: int) -> np.random.Generator:
    """The random generator of one lesion under one control seed (order-independent)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(str(case_id).encode()), int(lesion_id)]))


def in_plane_direction(ndim: int, rng: np.random.Generator) -> np.ndarray:
    """A unit vector (array axis order) at a uniformly drawn angle in the plane of the last two axes."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    u = np.zeros(ndim)
    u[-2], u[-1] = np.sin(angle), np.cos(angle)
    return u


@dataclass
class Lesion:
    """One reference lesion in its crop, with what every perturbation reuses (computed once per lesion).

    ``mask`` is the crop (background on every side, at least ``margin`` voxels); ``spacing`` mm per axis;
    ``depth`` is, inside the lesion, the distance (mm) of each voxel centre to the nearest background voxel
    centre (0 outside); ``reach`` is, outside, the distance to the nearest lesion voxel centre (0 inside);
    ``centroid`` is in mm (crop coordinates). The ``tie_field`` argument (values in [0, 1), default all 0)
    breaks ties at the threshold of every perturbation: a voxel's threshold is moved by ``tie_field x TIE``,
    kept as ``tie`` (``TIE`` = 1e-6 mm for
    distances, 1e-6 for blurred indicators), far below any physical scale, so voxels that would flip at exactly
    the same strength (a straight face moved along an axis) flip one at a time and the Dice of a data set
    moves in one-voxel steps. Nothing here depends on a control's seed, so one ``Lesion`` serves every control.
    """

    mask: np.ndarray
    spacing: tuple[float, ...]
    tie_field: InitVar[np.ndarray | None] = None
    tie: np.ndarray = field(init=False)
    depth: np.ndarray = field(init=False, repr=False)
    reach: np.ndarray = field(init=False, repr=False)
    centroid: np.ndarray = field(init=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self, tie_field: np.ndarray | None):
        self.mask = np.asarray(self.mask, bool)
        if not self.mask.any():
            raise ValueError("a lesion crop must hold at least one voxel")
        if self.mask[tuple(slice(1, -1) for _ in range(self.mask.ndim))].sum() != self.mask.sum():
            raise ValueError("a lesion crop needs background on every side (pad it by at least one voxel)")
        sp = tuple(float(s) for s in self.spacing)
        self.spacing = sp
        self.tie = np.zeros(self.mask.shape) if tie_field is None else np.asarray(tie_field, float) * TIE
        if self.tie.shape != self.mask.shape:
            raise ValueError(f"tie-break field shape {self.tie.shape} != crop shape {self.mask.shape}")
        self.depth = ndimage.distance_transform_edt(self.mask, sampling=sp)
        self.reach = ndimage.distance_transform_edt(~self.mask, sampling=sp)
        self.centroid = np.argwhere(self.mask).mean(axis=0) * np.asarray(sp)

    @property
    def sdf(self) -> np.ndarray:
        """Signed distance map in mm: ``-depth`` inside, ``reach`` outside."""
        return self.reach - self.depth

    def coordinates_mm(self) -> np.ndarray:
        """Voxel centre coordinates in mm, shape (ndim, *crop shape) (cached)."""
        c = self._cache.get("coords")
        if c is None:
            c = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(self.mask.shape, self.spacing)], indexing="ij"))
            self._cache["coords"] = c
        return c


def margin_voxels(perturbation: str, strength_mm: float, spacing) -> int:
    """Background voxels a crop needs around the lesion so the perturbed lesion stays inside it."""
    if perturbation == "offset":
        return int(np.ceil(strength_mm / min(float(s) for s in spacing))) + 2
    if perturbation == "smoothing":  # the half-peak contour of a point blurred by s lies 1.18 s out
        return int(np.ceil(1.5 * strength_mm / min(float(s) for s in spacing))) + 2
    return 1


def offset(lesion: Lesion, s: float, u: np.ndarray) -> np.ndarray:
    if s <= 0:
        return lesion.mask.copy()
    shift_vox = s * u / np.asarray(lesion.spacing)
    grid = np.indices(lesion.mask.shape, dtype=float)
    coords = grid - shift_vox.reshape((-1,) + (1,) * lesion.mask.ndim)
    moved = ndimage.map_coordinates(lesion.sdf, coords, order=1, mode="nearest")
    return moved <= lesion.tie


def _blur(lesion: Lesion, s: float) -> np.ndarray:
    """The lesion indicator blurred by a Gaussian of standard deviation ``s`` mm on every axis."""
    sigma = [s / sp for sp in lesion.spacing]
    return ndimage.gaussian_filter(lesion.mask.astype(np.float64), sigma, mode="constant", cval=0.0, truncate=4.0)


def smoothing(lesion: Lesion, s: float, u: np.ndarray) -> np.ndarray:
    if s <= 0:
        return lesion.mask.copy()
    blurred = _blur(lesion, s)
    return blurred >= 0.5 * blurred.max() + lesion.tie


def _inside_box(lesion: Lesion) -> np.ndarray:
    """The lesion's bounding box (a blur thresholded at 0.5 never leaves it; this removes float noise)."""
    box = lesion._cache.get("box")
    if box is None:
        box = np.zeros(lesion.mask.shape, bool)
        box[ndimage.find_objects(lesion.mask.astype(np.uint8))[0]] = True
        lesion._cache["box"] = box
    return box


def protrusions(lesion: Lesion, s: float, u: np.ndarray) -> np.ndarray:
    if s <= 0:
        return lesion.mask.copy()
    return lesion.mask & (_blur(lesion, s) >= 0.5 + lesion.tie)


def fragmentation(lesion: Lesion, s: float, u: np.ndarray) -> np.ndarray:
    if s <= 0:
        return lesion.mask.copy()
    rel = lesion.coordinates_mm() - lesion.centroid.reshape((-1,) + (1,) * lesion.mask.ndim)
    v = np.zeros_like(u)
    v[-2], v[-1] = -u[-1], u[-2]  # u turned by 90 degrees in-plane
    along_u = np.tensordot(u, rel, axes=1)
    along_v = np.tensordot(v, rel, axes=1)
    half = s / 2 + lesion.tie
    crack = (np.abs(along_u) < half) | (np.abs(along_v) < half)
    return lesion.mask & ~crack


def undersegmentation(lesion: Lesion, s: float, u: np.ndarray) -> np.ndarray:
    if s <= 0:
        return lesion.mask.copy()
    along = np.tensordot(u, lesion.coordinates_mm(), axes=1)
    return lesion.mask & (along <= along[lesion.mask].max() - s + lesion.tie)


FUNCTIONS = {
    "offset": offset,
    "smoothing": smoothing,
    "protrusions": protrusions,
    "fragmentation": fragmentation,
    "undersegmentation": undersegmentation,
}


def perturb(lesion: Lesion, perturbation: str, strength_mm: float, direction: np.ndarray) -> np.ndarray:
    """The predicted lesion (bool crop) of ``perturbation`` at ``strength_mm`` (definitions: module doc);
    ``direction`` is the lesion's seeded in-plane unit vector (``in_plane_direction``)."""
    try:
        fn = FUNCTIONS[perturbation]
    except KeyError:
        raise ValueError(f"unknown perturbation {perturbation!r}; expected one of {', '.join(PERTURBATIONS)}") from None
    if not (np.isfinite(strength_mm) and strength_mm >= 0):
        raise ValueError(f"perturbation strength must be a finite number >= 0 mm, got {strength_mm!r}")
    return fn(lesion, float(strength_mm), np.asarray(direction, float))
