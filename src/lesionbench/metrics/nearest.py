"""Nearest border points between components: exact k-d tree queries, many pairs of components at once.

Distances are Euclidean in mm between border voxel centres (``Parts.points``). To answer the nearest-point
query of many pairs of point sets with one tree, each pair's points carry its pair number (a tag) as an
extra coordinate spaced far beyond the image size, so a point only ever finds points of its own pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import surface
from .parts import Parts, make_tree


@dataclass
class Nearest:
    """Directed border distances between two whole masks: for every border point of ``pred`` the distance
    to the nearest border point of ``ref`` and the reference component it belongs to, and the reverse."""

    pred_to_ref: np.ndarray
    pred_nearest_owner: np.ndarray
    ref_to_pred: np.ndarray
    ref_nearest_owner: np.ndarray


def nearest_borders(ref: Parts, pred: Parts) -> Nearest:
    """Exact nearest-border distances between all of ``ref`` and all of ``pred`` (both with border points):
    one k-d tree query per direction."""
    d_pr, i_pr = ref.tree().query(pred.points, k=1)
    d_rp, i_rp = pred.tree().query(ref.points, k=1)
    return Nearest(np.asarray(d_pr, float), ref.owner[i_pr], np.asarray(d_rp, float), pred.owner[i_rp])


def tag_spacing(parts: Parts) -> float:
    """Distance between tag coordinates: beyond twice the image diagonal, so no point of another tag can be
    nearer than a point of the same tag."""
    return 4.0 * surface.default_penalty(parts.shape, parts.spacing) + 1.0


def tagged_nearest(tree_points: np.ndarray, tree_tags: np.ndarray, query_points: np.ndarray,
                   query_tags: np.ndarray, spacing_of_tags: float) -> np.ndarray:
    """For each query point, the distance to the nearest tree point carrying the same tag (every query tag
    must occur among the tree tags). Exact: the tag coordinate differs by 0 within a tag and by at least
    ``spacing_of_tags`` (``tag_spacing``) across tags."""
    if len(query_points) == 0:
        return np.zeros(0)
    tree = make_tree(np.column_stack([tree_points, tree_tags * spacing_of_tags]))
    d, _ = tree.query(np.column_stack([query_points, query_tags * spacing_of_tags]), k=1)
    return np.asarray(d, float)


def pair_min_distances(a: Parts, b: Parts, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """For each pair p (component ``ia[p]`` of ``a``, component ``ib[p]`` of ``b``), the smallest distance
    (mm) between their border points (inf when either has none)."""
    out = np.full(len(ia), np.inf)
    in_tree = np.unique(ia)
    tree_at, tree_which = a.point_indices(in_tree)
    query_at, query_pair = b.point_indices(ib)
    if len(tree_at) == 0 or len(query_at) == 0:
        return out
    tag_of_pair = np.searchsorted(in_tree, ia)      # pair p is tagged with its a-component's place in in_tree
    d = tagged_nearest(a.points[tree_at], tree_which, b.points[query_at], tag_of_pair[query_pair], tag_spacing(a))
    np.minimum.at(out, query_pair, d)
    out[a.starts[ia + 1] == a.starts[ia]] = np.inf   # a-component without border points: no tree point of its tag
    return out
