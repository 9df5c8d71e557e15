"""Surface elements (surfels) on the voxel-corner grid, each weighted by its area: the ``surfel`` surface
definition (``evaluation.surface_definition``; docs/metrics.md).

This is the definition of DeepMind's surface-distance library (Nikolov et al. 2018), also MONAI
``SurfaceDiceMetric(use_subvoxels=True)``. Every corner of the voxel grid is a point between its 2^d
neighbouring voxels (2x2 in 2D, 2x2x2 in 3D); the pattern of those voxels inside the mask is the corner's
code. A corner whose neighbourhood is neither empty nor full carries a surface element, placed at the
corner and weighted by the length (2D) or area (3D, mm^2) of the piece of the mask's boundary surface that
marching squares / marching cubes puts in the cell spanned by the neighbourhood's voxel centres.

The tables are derived here from first principles (no table is copied):

* 2D (marching squares): the contour joins the midpoints of the cell edges whose two pixels differ; a cell
  with two diagonal pixels inside (a saddle) gets two segments, each cutting off one inside pixel.
* 3D (marching cubes): on each cube face the contour joins midpoints of edges as in 2D (a saddle face cuts
  off its inside corners); the face segments close into polygons. A cube with more than four inside
  corners takes the polygons of its complement (the classic table's complementary symmetry). Each polygon
  is cut into triangles as a fan from the vertex that leaves the fewest distinct planes, so planar parts
  of a polygon stay whole. With anisotropic spacing a triangle's area is that of its scaled vertices.

The test suite checks both tables against MONAI's copy of surface-distance's tables for random spacings.

Surfels of a union of components are the union of the components' surfels: two voxels in one corner
neighbourhood are adjacent under full connectivity, so every neighbourhood holds voxels of one component
at most. Outside the image counts as background, as for the voxel borders.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable

import numpy as np

from .parts import BoxedMasks, Parts


def _corners(ndim: int) -> list[tuple[int, ...]]:
    """Cell corners (voxel offsets in {0, 1}^ndim) in C order; corner i is bit i of a neighbourhood code."""
    return list(itertools.product((0, 1), repeat=ndim))


def _crossed_edges(inside: dict, corners: list[tuple[int, ...]]) -> list[tuple]:
    """Cell edges (pairs of corners one step apart) whose two ends differ."""
    return [
        (a, b)
        for a, b in itertools.combinations(corners, 2)
        if sum(x != y for x, y in zip(a, b)) == 1 and inside[a] != inside[b]
    ]


def _face_segments(inside: dict, face: list[tuple[int, ...]]) -> list[tuple]:
    """Contour segments on one square face (or the 2D cell), as pairs of crossed edges: one segment for two
    crossed edges; for a saddle (four), one segment around each inside corner."""
    crossed = _crossed_edges(inside, face)
    if len(crossed) == 2:
        return [tuple(crossed)]
    if len(crossed) == 4:
        return [tuple(e for e in crossed if c in e) for c in face if inside[c]]
    return []


def _midpoint(edge: tuple) -> np.ndarray:
    return (np.asarray(edge[0], float) + np.asarray(edge[1], float)) / 2.0


@functools.cache
def _segment_vectors() -> np.ndarray:
    """(16, 2, 2): per 2D code, the contour segments as vectors at unit spacing (zeros pad)."""
    corners = _corners(2)
    out = np.zeros((16, 2, 2))
    for code in range(16):
        inside = {c: bool(code >> i & 1) for i, c in enumerate(corners)}
        for s, (e, f) in enumerate(_face_segments(inside, corners)):
            out[code, s] = _midpoint(f) - _midpoint(e)
    return out


def _polygons(inside: dict, corners: list[tuple[int, ...]]) -> list[list[tuple]]:
    """The marching-cubes polygons of one cube: face segments chained into closed loops of crossed edges."""
    neighbours: dict[tuple, list[tuple]] = {}
    for axis, side in itertools.product(range(3), (0, 1)):
        for e, f in _face_segments(inside, [c for c in corners if c[axis] == side]):
            neighbours.setdefault(e, []).append(f)
            neighbours.setdefault(f, []).append(e)
    loops, seen = [], set()
    for start in neighbours:
        if start in seen:
            continue
        loop, seen_here = [start], {start}
        while True:
            ahead = [n for n in neighbours[loop[-1]] if n not in seen_here]
            if not ahead:
                break
            loop.append(ahead[0])
            seen_here.add(ahead[0])
        seen |= seen_here
        loops.append(loop)
    return loops


def _fan(points: list[np.ndarray], apex: int) -> list[np.ndarray]:
    """Area vectors (half cross products) of the triangle fan of a polygon from vertex ``apex``."""
    p = points[apex:] + points[:apex]
    return [np.cross(p[i] - p[0], p[i + 1] - p[0]) / 2.0 for i in range(1, len(p) - 1)]


def _planes(vectors: Iterable[np.ndarray]) -> int:
    """Number of distinct plane orientations among triangles with these area vectors."""
    units: list[np.ndarray] = []
    for v in vectors:
        u = v / np.linalg.norm(v)
        if not any(abs(abs(float(u @ w)) - 1.0) < 1e-9 for w in units):
            units.append(u)
    return len(units)


@functools.cache
def _triangle_vectors() -> np.ndarray:
    """(256, T, 3): per 3D code, the area vectors of its marching-cubes triangles at unit spacing (zeros
    pad). Only their lengths matter (orientation is not used)."""
    corners = _corners(3)
    per_code = []
    for code in range(256):
        use = code if bin(code).count("1") <= 4 else 255 - code  # complementary symmetry
        inside = {c: bool(use >> i & 1) for i, c in enumerate(corners)}
        triangles: list[np.ndarray] = []
        for loop in _polygons(inside, corners):
            points = [_midpoint(e) for e in loop]
            fans = [_fan(points, apex) for apex in range(len(points))]
            triangles += min(fans, key=_planes)  # first apex among those with the fewest planes
        per_code.append(triangles)
    out = np.zeros((256, max(len(t) for t in per_code), 3))
    for code, triangles in enumerate(per_code):
        if triangles:
            out[code, : len(triangles)] = triangles
    return out


def element_sizes(spacing) -> np.ndarray:
    """Per neighbourhood code, the surface element's size at ``spacing`` (mm per axis): contour length in mm
    (2D, 16 codes) or surface area in mm^2 (3D, 256 codes). Codes: bit i is corner i of ``_corners``."""
    s = np.asarray(spacing, float)
    if len(s) == 2:
        return np.linalg.norm(_segment_vectors() * s, axis=-1).sum(axis=1)
    # an area vector scales by the product of the other two spacings along each axis
    scale = np.array([s[1] * s[2], s[0] * s[2], s[0] * s[1]])
    return np.linalg.norm(_triangle_vectors() * scale, axis=-1).sum(axis=1)


def neighbourhood_codes(mask: np.ndarray) -> np.ndarray:
    """Code of every corner of a boxed mask padded by background: shape ``mask.shape + 1``; corner c lies
    between voxels c - 1 and c along each axis."""
    nd = mask.ndim
    padded = np.zeros(tuple(n + 2 for n in mask.shape), np.uint8)
    padded[(slice(1, -1),) * nd] = mask
    codes = np.zeros(tuple(n + 1 for n in mask.shape), np.uint8)
    for bit, offset in enumerate(_corners(nd)):
        view = padded[tuple(slice(o, o + n + 1) for o, n in zip(offset, mask.shape))]
        codes |= view << np.uint8(bit)
    return codes


def surfel_parts(parts: Parts) -> Parts:
    """The same components with their surfels in place of their border voxels: ``points`` are the corners
    carrying a surface element (mm, on the voxel-corner grid: index - 0.5 times spacing), ``weights`` their
    lengths / areas (``element_sizes``), grouped by component like the border points (each component's in
    C order of its corners). Components still held in their label arrays (``parts.BoxedMasks``) are done a
    whole array at a time; others one by one."""
    nd = len(parts.shape)
    sizes = element_sizes(parts.spacing)
    full = (1 << (1 << nd)) - 1
    found = _array_surfels(parts, full) if isinstance(parts.masks, BoxedMasks) else _boxed_surfels(parts, full)
    at, owner, codes = found
    order = np.lexsort((np.ravel_multi_index(at.T, tuple(n + 1 for n in parts.shape)), owner))
    return Parts(
        parts.shape,
        parts.spacing,
        parts.masks,
        parts.lo,
        parts.hi,
        parts.voxels,
        (at[order] - 0.5) * np.asarray(parts.spacing, float),
        owner[order],
        weights=sizes[codes[order]],
    )


def _boxed_surfels(parts: Parts, full: int):
    """Corner indices in the image (corner c lies between voxels c - 1 and c), owners and codes of the
    surfels, one component's boxed mask at a time."""
    nd = len(parts.shape)
    at, owner, codes = [np.zeros((0, nd), np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.uint8)]
    for k, m in enumerate(parts.masks):
        c = neighbourhood_codes(m)
        on = (c != 0) & (c != full)
        at.append(np.argwhere(on) + parts.lo[k])
        owner.append(np.full(len(at[-1]), k, np.int64))
        codes.append(c[on])
    return np.concatenate(at), np.concatenate(owner), np.concatenate(codes)


def _array_surfels(parts: Parts, full: int):
    """As ``_boxed_surfels``, a whole label array at a time: the codes of its foreground, each surfel's
    component read off its neighbourhood (one component at most, see the module docstring); surfels of
    components not in ``parts`` (dropped by ``Parts.select``) are left out."""
    assert isinstance(parts.masks, BoxedMasks)
    nd = len(parts.shape)
    shift = parts.lo - parts.masks.array_lo()  # array -> image indices, per component
    at, owner, codes = [np.zeros((0, nd), np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.uint8)]
    for array, ks, labels in parts.masks.sources():
        c = neighbourhood_codes(array != 0)
        on = (c != 0) & (c != full)
        corners = np.argwhere(on)
        padded = np.pad(array, 1)
        label = np.zeros(len(corners), np.int64)
        for offset in _corners(nd):
            np.maximum(label, padded[tuple((corners + np.asarray(offset)).T)], out=label)
        lookup = np.full(int(max(labels.max(), label.max(initial=0))) + 1, -1, np.int64)
        lookup[labels] = ks
        k = lookup[label]
        keep = k >= 0
        at.append(corners[keep] + shift[k[keep]])
        owner.append(k[keep])
        codes.append(c[on][keep])
    return np.concatenate(at), np.concatenate(owner), np.concatenate(codes)
