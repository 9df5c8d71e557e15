"""Deterministic synthetic data sets that mimic the geometry of the three real benchmarks.

Each generator draws one case from ``numpy.random.default_rng([seed, case_index])``, so a case depends
only on the seed and its index (never on how many cases are made), and writes it in the generic folder
layout (``images/`` + ``masks/``) read by ``sources.folder``:

- ``fundus``: 2D RGB, a bright disc-shaped field of view with vessels and an optic disc (bright distractor),
  many small lesions - dark red dots (microaneurysm-like, down to about ten pixels), dark irregular blobs
  (haemorrhage-like) and bright yellow irregular blobs (exudate-like) - and some images with none.
- ``mri``: 3D FLAIR-like volume at anisotropic spacing, a brain-like ellipsoid with ventricles, small
  irregular hyperintense periventricular blobs (label 1) and, in some cases, a larger hyperintense
  "other pathology" region (label 2, ignored in evaluation).
- ``ct``: 3D CT in Hounsfield units, a body with fat, spine and a liver-like organ holding hypodense focal
  lesions of heterogeneous size (label 1) at low contrast.

Boundaries are ambiguous on purpose: shapes are irregular (random radial harmonics), appearance is the
blurred shape (partial volume), and noise is added after blurring.

Lesions are placed apart: a lesion is redrawn (up to ``PLACEMENT_ATTEMPTS`` times, then left out) when it
comes within ``LESION_GAP_MM`` of one already placed (twice the default evaluation's lesion dilation,
2 mm fundus and 3 mm MRI/CT, plus a diagonal voxel step), so every drawn lesion is one lesion of the
evaluation and the test split's lesion count (the statistical power of the study) is what the generator
draws. Sizes and contrasts are set so the smallest lesions (about ten pixels) are ones a model of the
default run's budget detects (docs/datasets.md).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io.atomic import atomic_path
from ..io.images import write_png

KINDS = ("fundus", "mri", "ct")
# Least distance between two lesions (mm): twice the default config's evaluation.lesion_dilation_mm (fundus 2,
# MRI/CT 3) plus a diagonal voxel step (dilated regions that only touch diagonally are connected too), so no
# two drawn lesions merge into one evaluated lesion.
LESION_GAP_MM = {"fundus": 6.0, "mri": 10.0, "ct": 10.0}
PLACEMENT_ATTEMPTS = 20


def case_ids(kind: str, n_cases: int) -> list[str]:
    return [f"{kind}_{i:03d}" for i in range(n_cases)]


# -- shapes --------------------------------------------------------------------------------------


def irregular_blob(
    shape: tuple[int, ...], centre, radii, rng: np.random.Generator, roughness: float = 0.3, n_harmonics: int = 4
) -> np.ndarray:
    """Boolean star-shaped blob: an ellipse(oid) whose radius is modulated by random low harmonics.

    2D: r(theta) = 1 + sum_k a_k cos(k theta + phi_k); 3D adds the same in elevation. A voxel is inside when
    its ellipse-normalized distance is below r. Works on the bounding box only (cheap for small blobs).
    """
    ndim = len(shape)
    centre = np.asarray(centre, float)
    radii = np.asarray(radii, float)
    reach = radii * (1 + roughness) + 1
    lo = np.maximum(np.floor(centre - reach).astype(int), 0)
    hi = np.minimum(np.ceil(centre + reach).astype(int) + 1, shape)
    out = np.zeros(shape, bool)
    if np.any(hi <= lo):
        return out
    grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij")
    rel = [(g - c) / r for g, c, r in zip(grids, centre, radii)]
    dist = np.sqrt(sum(x * x for x in rel))
    theta = np.arctan2(rel[-1], rel[-2])
    mod = np.ones_like(dist)
    amps = rng.uniform(0, roughness, n_harmonics) / np.arange(1, n_harmonics + 1)
    phases = rng.uniform(0, 2 * np.pi, n_harmonics)
    for k in range(n_harmonics):
        mod += amps[k] * np.cos((k + 2) * theta + phases[k])
    if ndim == 3:
        elev = np.arctan2(rel[0], np.sqrt(rel[1] ** 2 + rel[2] ** 2) + 1e-9)
        a, p = rng.uniform(0, roughness / 2), rng.uniform(0, 2 * np.pi)
        mod += a * np.cos(2 * elev + p)
    region = dist <= np.maximum(mod, 0.3)
    out[tuple(slice(a, b) for a, b in zip(lo, hi))] = region
    if not out.any():  # a blob smaller than one voxel still marks its centre voxel
        out[tuple(np.clip(np.round(centre).astype(int), 0, np.asarray(shape) - 1))] = True
    return out


def smooth_noise(shape, sigma, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered noise (texture, bias fields)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (field - field.mean()) / (field.std() + 1e-12)


def log_uniform(rng, lo, hi, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def gap_structure(gap_mm: float, spacing) -> np.ndarray:
    """Ellipsoidal structuring element holding every offset within ``gap_mm`` (physical, per-axis spacing)."""
    reach = [max(1, int(gap_mm // s)) for s in spacing]
    grids = np.meshgrid(*[np.arange(-r, r + 1) * s for r, s in zip(reach, spacing)], indexing="ij")
    return sum(g * g for g in grids) <= gap_mm**2


def place_apart(draw, taken: np.ndarray, structure: np.ndarray) -> np.ndarray | None:
    """A blob from ``draw()`` that does not touch ``taken`` (redrawn up to ``PLACEMENT_ATTEMPTS`` times; None
    when none fits); ``taken`` then grows by the blob dilated by ``structure``, in place."""
    for _attempt in range(PLACEMENT_ATTEMPTS):
        blob = draw()
        if blob.any() and not (blob & taken).any():
            # dilate inside the blob's bounding box grown by the structure's reach (cheap for small blobs)
            reach = np.array(structure.shape) // 2
            nonzero = np.nonzero(blob)
            lo = np.maximum([a.min() for a in nonzero] - reach, 0)
            hi = np.minimum([a.max() + 1 for a in nonzero] + reach, blob.shape)
            box = tuple(slice(a, b) for a, b in zip(lo, hi))
            taken[box] |= ndimage.binary_dilation(blob[box], structure)
            return blob
    return None


# -- fundus ----------------------------------------------------------------------------------------


def make_fundus(size, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (RGB uint8 image (H, W, 3), label map uint8 (H, W) with 1 = lesion)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + rng.uniform(-2, 2), w / 2 + rng.uniform(-2, 2)
    radius = 0.46 * min(h, w)
    rr = np.hypot(yy - cy, xx - cx) / radius
    fov = rr <= 1.0
    illum = np.clip(1.05 - 0.45 * rr**2 + 0.08 * smooth_noise((h, w), 12, rng), 0.2, 1.3)
    texture = 0.04 * smooth_noise((h, w), 2, rng)
    base = np.array([0.78, 0.36, 0.14]) * rng.uniform(0.85, 1.1)
    rgb = base[None, None, :] * (illum + texture)[..., None]

    # vessels: a few smooth random walks from the optic disc, dark red, the main non-lesion distractor
    disc_angle = rng.choice([0.0, np.pi]) + rng.uniform(-0.3, 0.3)
    disc = np.array([cy + 0.15 * radius * np.sin(disc_angle), cx + 0.55 * radius * np.cos(disc_angle)])
    vessels = np.zeros((h, w))
    for _ in range(rng.integers(4, 7)):
        pos, heading = disc.copy(), rng.uniform(0, 2 * np.pi)
        width = rng.uniform(0.6, 1.4)
        for _ in range(int(1.6 * radius)):
            heading += rng.normal(0, 0.12)
            pos += np.array([np.sin(heading), np.cos(heading)])
            iy, ix = round(pos[0]), round(pos[1])
            if not (0 <= iy < h and 0 <= ix < w):
                break
            vessels[iy, ix] = width
    vessels = np.clip(ndimage.gaussian_filter(vessels, 0.9) * 2.5, 0, 1)
    rgb *= (1 - 0.45 * vessels)[..., None]
    disc_mask = np.hypot(yy - disc[0], xx - disc[1]) <= 0.11 * radius
    disc_soft = ndimage.gaussian_filter(disc_mask.astype(float), 1.5)
    rgb += disc_soft[..., None] * np.array([0.25, 0.45, 0.25])

    labels = np.zeros((h, w), np.uint8)
    n_lesions = 0 if rng.random() < 0.15 else int(rng.integers(3, 22))
    appearance = np.zeros((h, w, 3))
    taken, gap = np.zeros((h, w), bool), gap_structure(LESION_GAP_MM["fundus"], (1.0, 1.0))
    for _ in range(n_lesions):
        kind = rng.choice(["dot", "haemorrhage", "exudate"], p=[0.45, 0.25, 0.30])
        if kind == "dot":
            r = rng.uniform(1.8, 3.0)  # about 10 to 30 px: the smallest a model of the laptop budget detects
            radii, rough = (r, r), 0.1
            colour = np.array([-0.5, -0.35, -0.1])
        elif kind == "haemorrhage":
            r = log_uniform(rng, 2.0, 6.0)
            radii, rough = (r * rng.uniform(0.6, 1.0), r), 0.45
            colour = np.array([-0.4, -0.25, -0.08])
        else:
            r = log_uniform(rng, 2.0, 7.0)
            radii, rough = (r * rng.uniform(0.5, 1.0), r), 0.5
            colour = np.array([0.25, 0.45, 0.05])

        def draw(radii=radii, rough=rough):
            for _attempt in range(20):  # inside the field of view, away from the optic disc
                centre = np.array([rng.uniform(0, h), rng.uniform(0, w)])
                if np.hypot(*(centre - [cy, cx])) < 0.9 * radius and np.hypot(*(centre - disc)) > 0.2 * radius:
                    break
            return irregular_blob((h, w), centre, radii, rng, roughness=rough) & fov

        blob = place_apart(draw, taken, gap)
        if blob is None:
            continue
        labels[blob] = 1
        soft = ndimage.gaussian_filter(blob.astype(float), rng.uniform(0.5, 0.9))
        appearance += soft[..., None] * colour * rng.uniform(0.8, 1.2)
    rgb += appearance * illum[..., None]
    rgb += rng.normal(0, 0.025, rgb.shape)
    rgb *= fov[..., None]
    rgb += (~fov)[..., None] * rng.uniform(0.0, 0.03)
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), labels


# -- MRI -------------------------------------------------------------------------------------------


def make_mri(size, spacing, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (FLAIR-like float32 volume (X, Y, Z), label map uint8: 1 = WMH-like lesion, 2 = other)."""
    nx, ny, nz = size
    sx, sy, sz = spacing
    grid = np.meshgrid(np.arange(nx) * sx, np.arange(ny) * sy, np.arange(nz) * sz, indexing="ij")
    centre = np.array([nx * sx, ny * sy, nz * sz]) / 2
    rel = [g - c for g, c in zip(grid, centre)]
    semi = np.array([0.42 * nx * sx, 0.47 * ny * sy, 0.46 * nz * sz]) * rng.uniform(0.92, 1.05, 3)
    ell = np.sqrt(sum((r / a) ** 2 for r, a in zip(rel, semi)))
    brain = ell <= 1.0
    wm = ell <= 0.72
    vent_semi = semi * np.array([0.12, 0.28, 0.35])
    vent = sum((r / a) ** 2 for r, a in zip(rel, vent_semi)) <= 1.0
    vol = np.where(brain, 0.55, 0.0) + np.where(wm, -0.12, 0.0) + np.where(vent, -0.3, 0.0)
    vol += brain * 0.03 * smooth_noise(vol.shape, 1.5, rng)

    labels = np.zeros(size, np.uint8)
    lesion_zone = wm & ~vent
    candidates = np.argwhere(lesion_zone)
    n_lesions = int(rng.integers(4, 17))
    lesion_signal = np.zeros(vol.shape)
    taken, gap = np.zeros(size, bool), gap_structure(LESION_GAP_MM["mri"], spacing)
    for _ in range(n_lesions):
        r_mm = log_uniform(rng, 2.0, 7.0)
        radii = (r_mm / sx * rng.uniform(0.6, 1.0), r_mm / sy, max(r_mm / sz * rng.uniform(0.5, 1.0), 0.4))

        def draw(radii=radii):
            c = candidates[rng.integers(len(candidates))].astype(float)
            return irregular_blob(size, c, radii, rng, roughness=0.45) & brain

        blob = place_apart(draw, taken, gap)
        if blob is None:
            continue
        labels[blob] = 1
        lesion_signal += ndimage.gaussian_filter(blob.astype(float), (0.7, 0.7, 0.35)) * rng.uniform(0.3, 0.5)
    if rng.random() < 0.5:  # "other pathology": large hyperintensity, labelled 2 and ignored
        c = candidates[rng.integers(len(candidates))].astype(float)
        r_mm = rng.uniform(7, 12)
        blob = irregular_blob(size, c, (r_mm / sx, r_mm / sy, r_mm / sz), rng, 0.3) & brain & (labels == 0)
        labels[blob] = 2
        lesion_signal += ndimage.gaussian_filter(blob.astype(float), 1.0) * 0.35
    vol += lesion_signal
    bias = 1 + 0.12 * smooth_noise(vol.shape, 10, rng)
    vol = ndimage.gaussian_filter(vol * bias, (0.5, 0.5, 0.25))
    vol += rng.normal(0, 0.035, vol.shape)
    return np.clip(vol, 0, None).astype(np.float32), labels


# -- CT --------------------------------------------------------------------------------------------


def make_ct(size, spacing, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (CT volume in HU, int16 (X, Y, Z), label map uint8: 1 = focal lesion)."""
    nx, ny, nz = size
    sx, sy, sz = spacing
    grid = np.meshgrid(np.arange(nx) * sx, np.arange(ny) * sy, np.arange(nz) * sz, indexing="ij")
    ext = np.array([nx * sx, ny * sy, nz * sz])
    x, y, z = (g - c for g, c in zip(grid, ext / 2))
    body = (x / (0.46 * ext[0])) ** 2 + (y / (0.36 * ext[1])) ** 2 <= 1
    inner = (x / (0.40 * ext[0])) ** 2 + (y / (0.30 * ext[1])) ** 2 <= 1
    hu = np.full(size, -1000.0)
    hu[body] = -100.0  # subcutaneous fat
    hu[inner] = 40.0  # soft tissue
    spine = (x / 9) ** 2 + ((y - 0.22 * ext[1]) / 9) ** 2 <= 1
    hu[spine & inner] = 450.0
    liver_c = np.array([-0.12 * ext[0], -0.04 * ext[1], 0.0]) + rng.uniform(-4, 4, 3)
    liver_semi = np.array([0.3, 0.24, 0.45]) * ext * rng.uniform(0.9, 1.1, 3)
    liver = sum(((g - c) / a) ** 2 for g, c, a in zip((x, y, z), liver_c, liver_semi)) <= 1
    liver &= inner
    liver_hu = rng.uniform(55, 70)
    hu[liver] = liver_hu
    hu += inner * 6 * smooth_noise(size, 2.0, rng)

    labels = np.zeros(size, np.uint8)
    core = ndimage.binary_erosion(liver, iterations=3)
    candidates = np.argwhere(core if core.any() else liver)
    n_lesions = int(rng.integers(4, 15))
    delta = np.zeros(size)
    taken, gap = np.zeros(size, bool), gap_structure(LESION_GAP_MM["ct"], spacing)
    for _ in range(n_lesions):
        r_mm = log_uniform(rng, 3.0, 12.0)
        radii = (r_mm / sx, r_mm / sy * rng.uniform(0.7, 1.0), r_mm / sz * rng.uniform(0.7, 1.0))

        def draw(radii=radii):
            c = candidates[rng.integers(len(candidates))].astype(float)
            return irregular_blob(size, c, radii, rng, roughness=0.35) & liver

        blob = place_apart(draw, taken, gap)
        if blob is None:
            continue
        labels[blob] = 1
        contrast = -rng.uniform(35, 55)  # hypodense, low contrast
        delta += ndimage.gaussian_filter(blob.astype(float), (0.8, 0.8, 0.4)) * contrast
    hu += delta
    hu = ndimage.gaussian_filter(hu, (0.6, 0.6, 0.3))
    hu += rng.normal(0, 9, size)
    return np.clip(np.round(hu), -1024, 3071).astype(np.int16), labels


# -- writing ---------------------------------------------------------------------------------------


def _write_nifti_deterministic(array: np.ndarray, spacing, path: Path) -> None:
    """NIfTI .nii.gz with a zero gzip timestamp, so the same seed gives the same bytes."""
    import nibabel as nib

    img = nib.Nifti1Image(array, np.diag(list(spacing) + [1.0]))
    img.header.set_zooms(tuple(float(s) for s in spacing))
    img.header.set_xyzt_units("mm")
    data = gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)
    with atomic_path(path, suffix=".nii.gz") as tmp:
        tmp.write_bytes(data)


def generate_case(kind: str, index: int, cfg: dict, out_dir: Path) -> str:
    """Generate case ``index`` of a synthetic data set into ``out_dir/{images,masks}``; returns its id."""
    rng = np.random.default_rng([int(cfg["seed"]), index])
    case_id = case_ids(kind, index + 1)[-1]
    size = tuple(int(s) for s in cfg["size"])
    if kind == "fundus":
        if len(size) != 2:
            raise ValueError(f"synthetic fundus needs a 2D size, got {size}")
        image, labels = make_fundus(size, rng)
        write_png(image, out_dir / "images" / f"{case_id}.png")
        write_png(labels, out_dir / "masks" / f"{case_id}.png")
        return case_id
    if len(size) != 3:
        raise ValueError(f"synthetic {kind} needs a 3D size, got {size}")
    spacing = tuple(float(s) for s in cfg.get("spacing", (1.0, 1.0, 1.0)))
    make = make_mri if kind == "mri" else make_ct
    image, labels = make(size, spacing, rng)
    _write_nifti_deterministic(image, spacing, out_dir / "images" / f"{case_id}.nii.gz")
    _write_nifti_deterministic(labels, spacing, out_dir / "masks" / f"{case_id}.nii.gz")
    return case_id


def generate(cfg: dict, out_dir: str | Path) -> list[str]:
    """Generate a whole synthetic data set (config block ``synthetic``); returns the case ids."""
    kind = cfg["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; choose one of {KINDS}")
    out_dir = Path(out_dir)
    return [generate_case(kind, i, cfg, out_dir) for i in range(int(cfg["n_cases"]))]
