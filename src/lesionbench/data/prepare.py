"""Preparation: one identical recipe for every source - normalize intensities, optionally resize, save.

Works one case at a time and in place where it can, so a 512x512x900 CT volume stays far below 4 GB.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..components import label_components
from ..io.atomic import write_csv
from ..io.cases import Case, save_case
from ..parallel import map_cases
from .sources import RawCase, SourceError, get_adapter

log = logging.getLogger(__name__)


def _foreground_moments(channel: np.ndarray, slab: int = 16) -> tuple[float, float]:
    """Mean and std over voxels above the channel minimum (or all voxels if those are under 1%),
    accumulated slab by slab in float64 so no full-size temporary is made."""
    lo = float(channel.min())
    flat = channel.reshape(channel.shape[0], -1) if channel.ndim > 1 else channel[None]
    n = s1 = s2 = 0.0
    for start in range(0, flat.shape[0], slab):
        part = flat[start : start + slab]
        fg = part[part > lo].astype(np.float64)
        n += fg.size
        s1 += fg.sum()
        s2 += np.square(fg).sum()
    if n < 0.01 * channel.size:
        n = float(channel.size)
        s1 = float(channel.sum(dtype=np.float64))
        s2 = float(np.square(channel, dtype=np.float64).sum())
    mean = s1 / n
    return mean, float(np.sqrt(max(s2 / n - mean * mean, 0.0)))


def normalize(image: np.ndarray, cfg: dict) -> np.ndarray:
    """Return a float32 copy of ``image`` (C, ...) normalized per channel.

    - ``zscore``: (x - mean) / std over the channel's non-background voxels (background = voxels equal to
      the channel minimum, e.g. the zero padding around a brain or outside a fundus disc);
    - ``window``: clip to ``window: [lo, hi]`` and scale to [0, 1] (CT in Hounsfield units);
    - ``minmax``: the 0.5 and 99.5 percentiles map to 0 and 1 (clipped);
    - ``none``: unchanged.
    """
    method = cfg.get("normalization", "zscore")
    out = image.astype(np.float32, copy=True)
    for c in range(out.shape[0]):
        channel = out[c]
        if method == "zscore":
            mean, std = _foreground_moments(channel)
            channel -= mean
            channel /= std if std > 0 else 1.0
        elif method == "window":
            lo, hi = (float(v) for v in cfg.get("window", (-100, 200)))
            np.clip(channel, lo, hi, out=channel)
            channel -= lo
            channel /= hi - lo
        elif method == "minmax":
            lo, hi = np.percentile(channel, [0.5, 99.5])
            np.clip(channel, lo, hi, out=channel)
            channel -= lo
            channel /= (hi - lo) if hi > lo else 1.0
        elif method != "none":
            raise ValueError(f"unknown normalization {method!r}")
    return out


def resize_case(
    case: RawCase, size: tuple[int, int], image: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple]:
    """Resize in-plane (last two axes) to ``size``: linear for the image, and for masks linear on the 0/1
    map then >= 0.5 (area-like, so a lesion is not lost to nearest-neighbour sampling luck). Spacing scales."""
    old = image.shape[-2:]
    factors = (size[0] / old[0], size[1] / old[1])
    lead = (1.0,) * (image.ndim - 2)
    image = ndimage.zoom(image, lead + factors, order=1, prefilter=False, grid_mode=True, mode="nearest")

    def resize_mask(m):
        if m is None:
            return None
        z = ndimage.zoom(
            m.astype(np.float32),
            (1.0,) * (m.ndim - 2) + factors,
            order=1,
            prefilter=False,
            grid_mode=True,
            mode="nearest",
        )
        return (z >= 0.5).astype(np.uint8)

    spacing = tuple(case.spacing[:-2]) + (case.spacing[-2] / factors[0], case.spacing[-1] / factors[1])
    return image, resize_mask(case.mask), resize_mask(case.ignore), spacing


def prepare_case(raw: RawCase, dataset: str, pre_cfg: dict) -> Case:
    """RawCase -> prepared Case (normalized float32 image, binary masks, spacing after resize)."""
    image = normalize(raw.image, pre_cfg)
    mask, ignore, spacing = raw.mask.astype(np.uint8, copy=False), raw.ignore, raw.spacing
    size = pre_cfg.get("resize")
    if size:
        image, mask, ignore, spacing = resize_case(raw, (int(size[0]), int(size[1])), image)
    if ignore is not None:
        mask = mask * (ignore == 0).astype(np.uint8)  # a voxel is never both lesion and ignored
    case = Case(
        case_id=raw.case_id,
        image=image,
        mask=mask,
        spacing=tuple(float(s) for s in spacing),
        ignore=ignore,
        affine=raw.affine if not size else _scaled_affine(raw, spacing),
        axis_order=raw.axis_order,
        dataset=dataset,
        source=raw.source,
    )
    case.check()
    return case


LESION_COUNT_COLUMNS = ["lesions_source", "lesions_prepared", "lesions_lost", "lesions_merged"]


def source_to_prepared_index(n_source: int, n_prepared: int) -> np.ndarray:
    """For each of ``n_source`` voxels along an axis, the prepared voxel containing its centre:
    ``floor((i + 0.5) * n_prepared / n_source)`` (the voxel-edge alignment of the resize, ``grid_mode``)."""
    return np.minimum(((np.arange(n_source) + 0.5) * n_prepared / n_source).astype(np.int64), n_prepared - 1)


def resize_lesion_counts(source: np.ndarray, prepared: np.ndarray) -> dict[str, int]:
    """What a resize did to the reference lesions (connected components, full connectivity).

    ``source`` is the binary lesion mask at source resolution (ignore voxels removed), ``prepared`` the
    mask after the in-plane resize (same leading axes). A source lesion *hits* a prepared lesion when one
    of its voxels lies in it (its centre falls inside a foreground prepared voxel, mapped by
    :func:`source_to_prepared_index`). Returns
    - ``lesions_source``, ``lesions_prepared``: component counts at each resolution;
    - ``lesions_lost``: source lesions that hit no prepared lesion (resized away);
    - ``lesions_merged``: source lesions that share their prepared lesion with another surviving source
      lesion, counted as ``sum over prepared lesions of max(0, source lesions hitting it - 1)``, i.e. how
      many source lesions no longer appear as a lesion of their own.
    So ``lesions_source - lesions_lost - lesions_merged`` prepared lesions have a source lesion; the rest
    of ``lesions_prepared`` (if any) are pieces of split source lesions. Equal shapes: nothing lost.
    """
    source, prepared = np.asarray(source) != 0, np.asarray(prepared) != 0
    labels_p, n_p = label_components(prepared)
    if source.shape == prepared.shape:
        return {"lesions_source": n_p, "lesions_prepared": n_p, "lesions_lost": 0, "lesions_merged": 0}
    if source.shape[:-2] != prepared.shape[:-2]:
        raise ValueError(f"masks differ outside the last two axes: {source.shape} vs {prepared.shape}")
    labels_s, n_s = label_components(source)
    rows = source_to_prepared_index(source.shape[-2], prepared.shape[-2])
    cols = source_to_prepared_index(source.shape[-1], prepared.shape[-1])
    pairs = []
    for k in np.ndindex(source.shape[:-2]):  # plane by plane: no full-size mapped copy of a volume
        mapped = labels_p[k][rows[:, None], cols[None, :]]
        here = (labels_s[k] > 0) & (mapped > 0)
        pairs.append(labels_s[k][here].astype(np.int64) * (n_p + 1) + mapped[here])
    hits = np.unique(np.concatenate(pairs)) if pairs else np.zeros(0, np.int64)
    src_of_hit, prep_of_hit = hits // (n_p + 1), hits % (n_p + 1)
    surviving = np.unique(src_of_hit)
    per_prepared = np.bincount(prep_of_hit, minlength=n_p + 1)  # distinct source lesions per prepared one
    return {
        "lesions_source": n_s,
        "lesions_prepared": n_p,
        "lesions_lost": int(n_s - len(surviving)),
        "lesions_merged": int(np.maximum(per_prepared - 1, 0).sum()),
    }


def source_lesion_mask(raw: RawCase) -> np.ndarray:
    """The source-resolution reference lesions as the prepared mask defines them (ignore voxels removed)."""
    mask = np.asarray(raw.mask) != 0
    if raw.ignore is not None:
        mask &= np.asarray(raw.ignore) == 0
    return mask


def _scaled_affine(raw: RawCase, spacing) -> np.ndarray | None:
    """Source affine with its in-plane voxel axes rescaled after a resize (so predictions still overlay)."""
    if raw.affine is None or raw.axis_order is None:
        return None
    affine = np.array(raw.affine, float)
    for a, source_axis in enumerate(raw.axis_order):
        affine[:3, source_axis] *= spacing[a] / raw.spacing[a]
    return affine


def prepare_dataset(
    name: str,
    ds_cfg: dict,
    manifest: pd.DataFrame,
    split: pd.DataFrame,
    raw_dir: Path,
    out_dir: Path,
    cases_csv: Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Prepare every case of ``split`` into ``out_dir`` (on up to ``threads`` threads, a case per thread) and
    write the ``cases.csv`` index (one row per case: split, geometry, and the reference lesion counts of
    :func:`resize_lesion_counts`)."""
    adapter = get_adapter(ds_cfg["source"])
    rows = manifest.set_index("case_id")
    missing = sorted(set(split["case_id"]) - set(rows.index))
    if missing:
        raise SourceError(f"split lists cases absent from the raw manifest: {missing[:10]}")
    out_dir.mkdir(parents=True, exist_ok=True)

    def prepare_one(item: tuple[str, str]) -> dict:
        case_id, split_name = item
        row = {"case_id": case_id, **rows.loc[case_id].to_dict()}
        try:
            raw = adapter.read_case(row, ds_cfg, raw_dir)
            case = prepare_case(raw, name, ds_cfg.get("preprocessing", {}))
        except ValueError as exc:
            raise SourceError(f"data set {name!r}, case {case_id!r} ({row.get('image')}): {exc}") from exc
        save_case(case, out_dir)
        log.info("prepared %s (%s, shape %s)", case_id, split_name, case.mask.shape)
        return {
            "case_id": case_id,
            "split": split_name,
            "ndim": case.ndim,
            "shape": "x".join(str(s) for s in case.mask.shape),
            "spacing": "x".join(f"{s:.6g}" for s in case.spacing),
            "channels": case.image.shape[0],
            "has_ignore": case.ignore is not None,
            **resize_lesion_counts(source_lesion_mask(raw), case.mask),
        }

    records = map_cases(prepare_one, zip(split["case_id"], split["split"]), threads)
    table = pd.DataFrame(records).sort_values("case_id").reset_index(drop=True)
    write_csv(table, cases_csv)
    return table
