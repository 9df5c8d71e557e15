"""Prepared cases: the one on-disk form every stage after preparation reads (docs/contracts.md).

A case is a folder ``{root}/{case_id}/`` holding ``image.npy`` (float32, channels first), ``mask.npy``
(uint8 0/1), optional ``ignore.npy`` (uint8 0/1) and ``meta.json``. Volumes put the slice axis first so a
memory-mapped slice read is contiguous.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_dir


class CaseError(ValueError):
    """A case on disk (or about to be written) breaks the prepared-case contract."""


@dataclass
class Case:
    case_id: str
    image: np.ndarray  # (C, *spatial) float32
    mask: np.ndarray  # spatial, uint8 0/1
    spacing: tuple[float, ...]  # mm per spatial axis, array order
    ignore: np.ndarray | None = None  # spatial, uint8 0/1, 1 = excluded from metrics
    affine: np.ndarray | None = None  # 4x4 source affine for NIfTI-derived volumes
    axis_order: tuple[int, ...] | None = None  # array axis a <- source axis axis_order[a]
    dataset: str = ""
    source: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return self.mask.ndim

    def check(self) -> None:
        """Raise CaseError naming the case if any part breaks the contract."""
        where = f"case {self.case_id!r}"
        if self.mask.ndim not in (2, 3):
            raise CaseError(f"{where}: mask must be 2D or 3D, got shape {self.mask.shape}")
        if self.image.ndim != self.mask.ndim + 1:
            raise CaseError(
                f"{where}: image shape {self.image.shape} is not channels-first over mask shape {self.mask.shape}"
            )
        if self.image.shape[1:] != self.mask.shape:
            raise CaseError(f"{where}: image spatial shape {self.image.shape[1:]} != mask shape {self.mask.shape}")
        if len(self.spacing) != self.mask.ndim or any(not (s > 0) for s in self.spacing):
            raise CaseError(f"{where}: spacing {self.spacing} must be {self.mask.ndim} positive numbers")
        if self.mask.dtype != np.uint8 or (self.mask.size and self.mask.max() > 1):
            raise CaseError(f"{where}: mask must be uint8 with values 0/1")
        if not np.isfinite(self.image).all():
            raise CaseError(f"{where}: image holds NaN or infinite values")
        if self.ignore is not None:
            if self.ignore.shape != self.mask.shape:
                raise CaseError(f"{where}: ignore shape {self.ignore.shape} != mask shape {self.mask.shape}")
            if self.ignore.dtype != np.uint8 or (self.ignore.size and self.ignore.max() > 1):
                raise CaseError(f"{where}: ignore mask must be uint8 with values 0/1")

    def meta(self) -> dict:
        return {
            "case_id": self.case_id,
            "dataset": self.dataset,
            "ndim": self.ndim,
            "spacing": [float(s) for s in self.spacing],
            "shape": [int(s) for s in self.mask.shape],
            "channels": int(self.image.shape[0]),
            "has_ignore": self.ignore is not None,
            "affine": None if self.affine is None else np.asarray(self.affine, float).tolist(),
            "axis_order": None if self.axis_order is None else [int(a) for a in self.axis_order],
            "source": self.source,
        }


def save_case(case: Case, root: str | os.PathLike) -> Path:
    """Validate and write ``case`` to ``root/case_id`` atomically (the folder appears whole or not at all)."""
    case.check()
    target = Path(root) / case.case_id
    with atomic_dir(target) as tmp:
        np.save(tmp / "image.npy", np.ascontiguousarray(case.image, dtype=np.float32))
        np.save(tmp / "mask.npy", np.ascontiguousarray(case.mask, dtype=np.uint8))
        if case.ignore is not None:
            np.save(tmp / "ignore.npy", np.ascontiguousarray(case.ignore, dtype=np.uint8))
        (tmp / "meta.json").write_text(json.dumps(case.meta(), indent=2, sort_keys=True) + "\n")
    return target


def read_meta(root: str | os.PathLike, case_id: str) -> dict:
    path = Path(root) / case_id / "meta.json"
    if not path.is_file():
        raise CaseError(f"{path}: prepared case {case_id!r} is missing (no meta.json)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CaseError(f"{path}: unreadable meta.json ({exc})") from exc


def _load_array(path: Path, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise CaseError(f"{path}: missing")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CaseError(f"{path}: unreadable array ({exc})") from exc


def load_case(root: str | os.PathLike, case_id: str, mmap: bool = False, image: bool = True) -> Case:
    """Read a prepared case. ``mmap=True`` maps arrays lazily (training reads slices this way);
    ``image=False`` skips the image (evaluation needs only masks) and returns a 0-channel placeholder."""
    folder = Path(root) / case_id
    meta = read_meta(root, case_id)
    mask = _load_array(folder / "mask.npy", mmap)
    img = _load_array(folder / "image.npy", mmap) if image else np.zeros((0,) + tuple(mask.shape), np.float32)
    ignore = _load_array(folder / "ignore.npy", mmap) if meta.get("has_ignore") else None
    affine = None if meta.get("affine") is None else np.asarray(meta["affine"], float)
    axis_order = None if meta.get("axis_order") is None else tuple(meta["axis_order"])
    case = Case(
        case_id=case_id,
        image=img,
        mask=mask,
        spacing=tuple(meta["spacing"]),
        ignore=ignore,
        affine=affine,
        axis_order=axis_order,
        dataset=meta.get("dataset", ""),
        source=meta.get("source", {}),
    )
    if list(mask.shape) != list(meta["shape"]):
        raise CaseError(f"{folder}: mask shape {mask.shape} != meta.json shape {meta['shape']}")
    return case


def list_cases(root: str | os.PathLike) -> list[str]:
    """Case ids under a prepared folder, sorted (hidden temporary folders excluded)."""
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
