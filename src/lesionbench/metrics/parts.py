"""Connected components of a mask as boxed parts, found without labelling the whole volume.

Every metric works on components (lesions and predicted components) cropped to their bounding boxes and
on their border points, so no step of the evaluation touches the full image more than a few cheap
reductions. Labelling uses full connectivity (8 in 2D, 26 in 3D, ``lesionbench.components``) on arrays
that cannot join or split components:

* 2D: the image compacted to its non-empty parts (``_compact_2d``): bands of non-empty rows stacked with
  one empty row between them, each band reduced to its non-empty columns with one empty column per gap.
  Pixels adjacent in the image stay adjacent, pixels separated by an empty row or column stay separated,
  and face neighbours are the same pixels or empty ones, so components and borders are unchanged.
* 3D: a (slice, row) occupancy map ``mask.any(axis=-1)`` is labelled with 8-connectivity. Two 26-adjacent
  voxels fall in equal or 8-adjacent (slice, row) cells, so each 3D component lies inside one occupancy
  region; each region's box (restricted to the region's rows) is labelled on its own.

Numbering equals that of ``label_components`` on the whole mask, so reference lesion ids equal those of
``lesions.csv``: components are sorted by the key of ``numbering_rule`` (C order of the first voxel for
volumes; for 2D images whichever rule the labelling library follows, found with probe images), or, if the
rule is not recognised, by labelling the whole image once. The test suite checks the numbering against
``label_components`` on random masks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..components import label_components, largest_slice_areas
from .indexing import expand_ranges

# A 2D mask that compaction cannot shrink is labelled from its pixel list (``_sparse_2d``) when at most
# 1 / SPARSE_SHARE of its pixels are foreground (many small components scattered over a large image).
SPARSE_SHARE = 16


def make_tree(points: np.ndarray) -> cKDTree:
    """Exact nearest-neighbour tree over points in mm."""
    return cKDTree(points, leafsize=32, balanced_tree=False, compact_nodes=False)


class BoxedMasks(Sequence[np.ndarray]):
    """The boxed masks of components, cut on demand from the label arrays they were found in: item k is
    ``arrays[which[k]][box k] == label[k]``. Most steps touch few components' masks (overlapping pairs,
    reference lesions), so a mask per component is never built for thousands of small false positives."""

    def __init__(self, arrays: list[np.ndarray], which, label, lo, hi):
        self._arrays = arrays
        self._which = np.asarray(which, np.int64)
        self._label = np.asarray(label, np.int64)
        self._lo = np.asarray(lo, np.int64)
        self._hi = np.asarray(hi, np.int64)

    def sources(self):
        """Per label array holding components here: the array, those components' indices k and labels."""
        for a, array in enumerate(self._arrays):
            ks = np.flatnonzero(self._which == a)
            if len(ks):
                yield array, ks, self._label[ks]

    def array_lo(self) -> np.ndarray:
        """Box starts in array indices, per component."""
        return self._lo

    def __len__(self) -> int:
        return len(self._label)

    @overload
    def __getitem__(self, k: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[np.ndarray]: ...
    def __getitem__(self, k):
        if isinstance(k, slice):
            return self.take(np.arange(len(self))[k])
        box = tuple(map(slice, self._lo[k].tolist(), self._hi[k].tolist()))
        return self._arrays[self._which[k]][box] == self._label[k]

    def window(self, k: int, start: list[int], stop: list[int]) -> np.ndarray:
        """Mask of component k over the part ``start .. stop`` of its box (box coordinates)."""
        lo = self._lo[k].tolist()
        box = tuple(slice(a + b, a + c) for a, b, c in zip(lo, start, stop))
        return self._arrays[self._which[k]][box] == self._label[k]

    def take(self, indices) -> BoxedMasks:
        """The masks of the given component indices, in that order."""
        i = np.asarray(indices, np.int64)
        return BoxedMasks(self._arrays, self._which[i], self._label[i], self._lo[i], self._hi[i])


def take_masks(masks: Sequence[np.ndarray], indices) -> Sequence[np.ndarray]:
    """The masks of the given component indices (``BoxedMasks`` stay lazy)."""
    if isinstance(masks, BoxedMasks):
        return masks.take(indices)
    return [masks[int(i)] for i in indices]


@dataclass
class Parts:
    """Components 1..n of a binary mask: boxed masks and border points.

    ``masks[k]`` covers the half-open box ``lo[k] .. hi[k]`` of component index ``k`` (0-based, component
    ``k + 1``); ``voxels[k]`` is its voxel count. ``points`` holds the border voxel centres in mm of all
    components (``surface.border``), grouped by component: those of ``k`` are
    ``points[starts[k]:starts[k + 1]]`` and ``owner`` gives each point's component. ``shape`` and
    ``spacing`` are those of the full image. ``weights`` is None for border voxels (every point weighs the
    same); ``surfels.surfel_parts`` gives parts whose points are surface elements weighted by their size.
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    masks: Sequence[np.ndarray]  # a list, or ``BoxedMasks`` (cut on demand)
    lo: np.ndarray  # (n, ndim) int64
    hi: np.ndarray  # (n, ndim) int64
    voxels: np.ndarray  # (n,) int64
    points: np.ndarray  # (N, ndim) float64, grouped by component
    owner: np.ndarray  # (N,) int64, non-decreasing
    weights: np.ndarray | None = None  # (N,) float64, or None: all points weigh the same
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.masks)

    @property
    def starts(self) -> np.ndarray:
        s = self._cache.get("starts")
        if s is None:
            s = np.searchsorted(self.owner, np.arange(self.n + 1))
            self._cache["starts"] = s
        return s

    def box(self, k: int) -> tuple[slice, ...]:
        """Slices of component index ``k`` in the full image."""
        return tuple(slice(int(a), int(b)) for a, b in zip(self.lo[k], self.hi[k]))

    def window(self, k: int, start: list[int], stop: list[int]) -> np.ndarray:
        """Mask of component index ``k`` over the image box ``start .. stop`` (inside its box)."""
        lo = self.lo[k].tolist()
        inner = [a - b for a, b in zip(start, lo)], [a - b for a, b in zip(stop, lo)]
        if isinstance(self.masks, BoxedMasks):
            return self.masks.window(k, *inner)
        return self.masks[k][tuple(map(slice, *inner))]

    def border_points(self, k: int) -> np.ndarray:
        """Border voxel centres of component index ``k`` in mm, shape (b, ndim)."""
        s = self.starts
        return self.points[s[k] : s[k + 1]]

    def point_indices(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``points`` of the border points of the given components (in the given order,
        repeats allowed) and, for each, the position in ``indices`` it comes from."""
        indices = np.asarray(indices, np.int64)
        s = self.starts
        return expand_ranges(s[indices], s[indices + 1] - s[indices])

    def tree(self) -> cKDTree:
        """Tree over all border points (built once)."""
        t = self._cache.get("tree")
        if t is None:
            t = make_tree(self.points)
            self._cache["tree"] = t
        return t

    def size_fractions(self, indices=None) -> np.ndarray:
        """Lesion-to-image area fraction of the given components (all when None), as
        ``lesionbench.components.size_fractions``: 2D, pixels / (H*W); 3D, the largest area in any slice
        along axis 0 / (H*W)."""
        idx = np.arange(self.n) if indices is None else np.asarray(indices, np.int64)
        plane = float(self.shape[-2] * self.shape[-1])
        if len(self.shape) == 2:  # the area of a 2D component is its pixel count
            return self.voxels[idx] / plane
        return np.array([largest_slice_areas(self.masks[k].view(np.uint8), 1)[0] for k in idx], float) / plane

    def restrict(self, exclude: np.ndarray | None) -> Parts:
        """The same components (same numbering) with the voxels where ``exclude`` is set removed.

        Components left empty keep their index with ``voxels == 0``, an all-False mask and no border.
        """
        if exclude is None:
            return self
        from .surface import border_points

        masks, voxels, pts, owner = [], np.zeros(self.n, np.int64), [], []
        for k, m in enumerate(self.masks):
            cut = exclude[self.box(k)] != 0
            if cut.any():
                m = m & ~cut
                p = border_points(m, self.spacing, origin=self.lo[k])
            else:
                p = self.border_points(k)
            masks.append(m)
            voxels[k] = np.count_nonzero(m)
            pts.append(p)
            owner.append(np.full(len(p), k, np.int64))
        nd = len(self.shape)
        return Parts(
            self.shape,
            self.spacing,
            masks,
            self.lo.copy(),
            self.hi.copy(),
            voxels,
            np.concatenate([np.zeros((0, nd))] + pts),
            np.concatenate([np.zeros(0, np.int64)] + owner),
        )

    def select(self, keep: np.ndarray) -> Parts:
        """The components where ``keep`` (bool, length n) is set, renumbered 1..m in the same order."""
        keep = np.asarray(keep, bool)
        idx = np.flatnonzero(keep)
        new = np.cumsum(keep) - 1
        on = keep[self.owner]
        return Parts(
            self.shape,
            self.spacing,
            take_masks(self.masks, idx),
            self.lo[idx],
            self.hi[idx],
            self.voxels[idx],
            self.points[on],
            new[self.owner[on]],
        )


@functools.cache
def numbering_rule(ndim: int) -> str:
    """How ``label_components`` orders components, read off small probe images.

    ``raster``: by the C-order index of each component's first voxel; ``block`` (2D): by the first 2x2
    pixel block (blocks aligned to even indices, taken in C order) holding a pixel of the component;
    ``other``: neither, and ``find_parts`` then labels the whole image to number components.
    """

    def first_of(shape, a, b):
        probe = np.zeros(shape, bool)
        probe[a] = probe[b] = True
        try:
            labels, n = label_components(probe)
        except Exception:  # a labelling failure on the probe: number by labelling whole images
            return "?"
        return (
            "a"
            if n == 2 and labels[a] == 1 and labels[b] == 2
            else "b"
            if n == 2 and labels[b] == 1 and labels[a] == 2
            else "?"
        )

    if ndim == 3:
        ok = first_of((2, 3, 3), (0, 0, 2), (1, 2, 0)) == "a" and first_of((3, 2, 3), (0, 1, 2), (2, 0, 0)) == "a"
        return "raster" if ok else "other"
    p1, p2 = first_of((2, 4), (0, 3), (1, 0)), first_of((4, 2), (0, 1), (2, 0))
    if p1 == "a" and p2 == "a":
        return "raster"
    if p1 == "b" and p2 == "a":
        return "block"
    return "other"


def _keep_with_separator(occupied: np.ndarray) -> np.ndarray:
    """Occupied positions plus the first empty one after each run (along the last axis)."""
    keep = occupied.copy()
    keep[..., 1:] |= occupied[..., :-1]
    return keep


def _same_index(idx: np.ndarray) -> np.ndarray:
    return idx


def _compact_2d(fg: np.ndarray):
    """A small array with the same components and borders as the 2D mask ``fg``, and the map of its
    indices back to the image (None, None for an empty mask).

    Bands (runs of non-empty rows) are kept with the first empty row after each; inside each band, its
    non-empty columns are kept with the first empty column after each run of them. Pixels adjacent in the
    image stay adjacent, pixels separated by an empty row or band column stay separated (by exactly one),
    and a pixel's face neighbours are the same pixels or empty ones, so components and borders are
    unchanged. When that array would not be less than half the image (foreground scattered over it), the
    mask itself is returned with the identity map.
    """
    rows_occupied = np.asarray(fg.any(axis=1))
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows_occupied.view(np.int8), [0]))))
    if len(edges) == 0:
        return None, None
    band_start = edges[0::2]
    row_image = np.flatnonzero(_keep_with_separator(rows_occupied))
    row_band = np.searchsorted(band_start, row_image, side="right") - 1
    cols_occupied = np.stack([fg[a:b].any(axis=0) for a, b in zip(edges[0::2], edges[1::2])])
    keep = _keep_with_separator(cols_occupied)
    widths = keep.sum(axis=1)
    if len(row_image) * int(widths.max()) > fg.size // 2:  # scattered foreground: compacting would not pay
        return fg, _same_index
    band, col = np.nonzero(keep)
    rank = np.arange(len(col)) - np.repeat(np.concatenate(([0], np.cumsum(widths)[:-1])), widths)
    col_image = np.zeros((len(band_start), int(widths.max())), np.int64)
    col_image[band, rank] = col
    compact = fg[row_image[:, None], col_image[row_band]]
    compact &= np.arange(col_image.shape[1]) < widths[row_band][:, None]

    def to_image(idx):
        return np.stack([row_image[idx[:, 0]], col_image[row_band[idx[:, 0]], idx[:, 1]]], axis=1)

    return compact, to_image


@dataclass
class _Found:
    """Components collected crop by crop: the label arrays, per component its array, label, box in that
    array, box start in the image and voxel count, the sort keys of ``_order_keys``, and (per crop) the
    border points grouped by component with their counts."""

    arrays: list = field(default_factory=list)
    which: list = field(default_factory=list)
    label: list = field(default_factory=list)
    array_lo: list = field(default_factory=list)
    array_hi: list = field(default_factory=list)
    lo: list = field(default_factory=list)
    voxels: list = field(default_factory=list)
    raster_key: list = field(default_factory=list)
    block_key: list = field(default_factory=list)
    points: list = field(default_factory=list)
    point_counts: list = field(default_factory=list)


def _collect(labels: np.ndarray, n: int, to_image, shape, spacing, out: _Found) -> None:
    """Append the components 1..n of a label array; ``to_image`` maps (k, ndim) indices of the array to
    image indices. Inside one component's box that map is a plain shift (no separator lies inside a
    component's box), so boxed masks are cut from ``labels`` as they are.

    The border voxels are found at once for all components (a face neighbour inside the foreground belongs
    to the same component, so the border of the union is the union of the borders); voxel counts come from
    one count over the label array; the rest is ``_add``.
    """
    from .surface import border

    if n == 0:
        return
    idx = np.argwhere(border(labels))
    voxels = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    _add(idx, labels[tuple(idx.T)], voxels, labels, to_image, shape, spacing, out)


def _add(idx, lab, voxels, labels, to_image, shape, spacing, out: _Found) -> None:
    """Append components 1..n (n = len(voxels)) of ``labels`` given their border voxels ``idx`` (array
    indices) and labels ``lab``. Everything is read off the border voxels: a component's box is the box of
    its border, and its first voxel in C order, as well as its first 2x2 block, holds a border voxel (the
    voxel before it along the last axis is not in the component). Nothing is done per component
    (``BoxedMasks`` cuts the masks when asked)."""
    n = len(voxels)
    order = np.argsort(lab, kind="stable")
    idx, lab = idx[order], lab[order]
    image_idx = to_image(idx)
    starts = np.searchsorted(lab, np.arange(1, n + 2))
    box_lo = np.minimum.reduceat(idx, starts[:-1], axis=0)
    box_hi = np.maximum.reduceat(idx, starts[:-1], axis=0) + 1
    out.raster_key.append(np.minimum.reduceat(np.ravel_multi_index(image_idx.T, shape), starts[:-1]))
    if labels.ndim == 2:
        block = (image_idx[:, 0] // 2) * (shape[1] // 2 + 1) + image_idx[:, 1] // 2
        out.block_key.append(np.minimum.reduceat(block, starts[:-1]))
    out.points.append(image_idx * np.asarray(spacing, np.float64))
    out.point_counts.append(np.diff(starts))
    out.voxels.append(np.asarray(voxels, np.int64))
    out.lo.append(to_image(box_lo))
    out.which.append(np.full(n, len(out.arrays), np.int64))
    out.label.append(np.arange(1, n + 1))
    out.array_lo.append(box_lo)
    out.array_hi.append(box_hi)
    out.arrays.append(labels)


def _sparse_2d(fg: np.ndarray, shape, spacing, out: _Found) -> None:
    """Components of a 2D mask whose few foreground pixels are scattered over the image, found from the
    pixel list alone: pixels are joined to their 8 neighbours present in the sorted list of foreground
    indices (a graph's connected components), a pixel lacking one of its 4 face neighbours is a border
    pixel. The label image is written only at the foreground pixels (for ``BoxedMasks``); the work is one
    pass to list the pixels plus a few binary searches per pixel."""
    h, w = shape
    flat = np.flatnonzero(fg)
    rows, cols = np.divmod(flat, w)

    def neighbour(dr: int, dc: int) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: whether its neighbour at (dr, dc) is foreground, and that neighbour's position."""
        inside = (rows + dr >= 0) & (rows + dr < h) & (cols + dc >= 0) & (cols + dc < w)
        at = np.minimum(np.searchsorted(flat, flat + (dr * w + dc)), len(flat) - 1)
        return inside & (flat[at] == flat + (dr * w + dc)), at

    a, b = [np.arange(len(flat))], [np.arange(len(flat))]
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):  # half of the 8 neighbours: each link once
        present, at = neighbour(dr, dc)
        a.append(np.flatnonzero(present))
        b.append(at[present])
    graph = coo_matrix((np.ones(sum(len(x) for x in a), np.int8), (np.concatenate(a), np.concatenate(b))))
    n, component = connected_components(graph.tocsr(), directed=False)
    is_border = np.zeros(len(flat), bool)
    for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        is_border |= ~neighbour(dr, dc)[0]
    labels = np.zeros(shape, np.uint16 if n < 2**16 else np.int32)  # zero pages cost nothing until written
    labels.flat[flat] = component + 1
    idx = np.column_stack([rows[is_border], cols[is_border]])
    _add(idx, component[is_border] + 1, np.bincount(component, minlength=n), labels, _same_index, shape, spacing, out)


def _order_keys(found: _Found, shape, whole) -> np.ndarray:
    """Sort keys reproducing the numbering of ``label_components`` (see ``numbering_rule``)."""
    rule = numbering_rule(len(shape))
    raster = np.concatenate(found.raster_key)
    if rule == "raster":
        return raster
    if rule == "block":
        return np.concatenate(found.block_key)
    full, _ = label_components(whole())
    return full[np.unravel_index(raster, shape)].astype(np.int64)


def find_parts(mask: np.ndarray, spacing, exclude: np.ndarray | None = None, min_voxels: int = 0) -> Parts:
    """Connected components (full connectivity) of ``mask & ~exclude`` with at least ``min_voxels`` voxels.

    Components are numbered like ``label_components(mask & ~exclude)`` (``numbering_rule``); the kept
    components are renumbered 1..m in that order, which equals labelling the filtered mask.
    """
    mask = np.asarray(mask)
    shape = tuple(int(s) for s in mask.shape)
    spacing = tuple(float(s) for s in spacing)
    if mask.ndim not in (2, 3):
        raise ValueError(f"mask must be 2D or 3D, got shape {shape}")
    if len(spacing) != mask.ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing {spacing} must be {mask.ndim} positive numbers (mask shape {shape})")
    if exclude is not None and tuple(np.shape(exclude)) != shape:
        raise ValueError(f"ignore mask shape {tuple(np.shape(exclude))} != mask shape {shape}")
    found = _Found()
    if mask.ndim == 2:
        fg = mask if mask.dtype == bool else mask != 0
        if exclude is not None:
            fg = fg & (np.asarray(exclude) == 0)
        compact, to_image = _compact_2d(fg)
        if compact is fg and np.count_nonzero(fg) <= fg.size // SPARSE_SHARE:
            _sparse_2d(fg, shape, spacing, found)
        elif compact is not None:
            labels, n = label_components(compact)
            _collect(labels, n, to_image, shape, spacing, found)
    else:
        occupancy = np.asarray(mask.any(axis=-1))
        regions, n_regions = label_components(occupancy)
        for r, (sz, sy) in enumerate(ndimage.find_objects(regions, max_label=n_regions), start=1):
            rows = regions[sz, sy] == r
            sub = mask[sz, sy]
            xs = np.flatnonzero(sub[rows].any(axis=0))
            x0, x1 = int(xs[0]), int(xs[-1]) + 1
            crop = (sub[:, :, x0:x1] != 0) & rows[:, :, None]
            if exclude is not None:
                crop &= np.asarray(exclude)[sz, sy, x0:x1] == 0
            labels, n = label_components(crop)
            offset = np.array([sz.start, sy.start, x0])
            _collect(labels, n, lambda idx, o=offset: idx + o, shape, spacing, found)
    nd = mask.ndim
    order = np.zeros(0, np.int64)
    if found.arrays:

        def whole():
            fg = mask != 0
            return fg & (np.asarray(exclude) == 0) if exclude is not None else fg

        order = np.argsort(_order_keys(found, shape, whole), kind="stable")

    def stack(rows: list, width: tuple) -> np.ndarray:  # per-crop arrays, concatenated in the new order
        return np.concatenate([np.zeros((0, *width), np.int64), *rows])[order]

    masks = BoxedMasks(
        found.arrays,
        stack(found.which, ()),
        stack(found.label, ()),
        stack(found.array_lo, (nd,)),
        stack(found.array_hi, (nd,)),
    )
    lo = stack(found.lo, (nd,))
    hi = lo + stack(found.array_hi, (nd,)) - stack(found.array_lo, (nd,))
    counts = np.concatenate([np.zeros(0, np.int64)] + found.point_counts)
    at, owner = expand_ranges((np.cumsum(counts) - counts)[order], counts[order])  # points in the new order
    parts = Parts(
        shape,
        spacing,
        masks,
        lo,
        hi,
        np.concatenate([np.zeros(0, np.int64)] + found.voxels).astype(np.int64)[order],
        np.concatenate([np.zeros((0, nd))] + found.points)[at],
        owner,
    )
    if min_voxels > 1 and parts.n:
        parts = parts.select(parts.voxels >= min_voxels)
    return parts


def paint(parts: Parts, indices=None) -> np.ndarray:
    """The full-image bool mask of the given component indices (0-based; all when None)."""
    out = np.zeros(parts.shape, bool)
    for k in range(parts.n) if indices is None else indices:
        out[parts.box(k)] |= parts.masks[k]
    return out
