"""Source adapters: one per kind of data set (docs/datasets.md).

An adapter is a module exposing two functions:

``acquire(name: str, ds_cfg: dict, raw_dir: Path) -> pandas.DataFrame``
    Make the source's files available under (or referenced from) ``raw_dir`` - generate, download and
    verify, extract, or check what the user placed - and return the raw manifest: one row per case with
    columns ``case_id, image, mask, official_split`` (paths absolute or relative to ``raw_dir``;
    ``official_split`` is ``train``, ``test`` or ``""``). Extra columns are allowed and are passed back
    to ``read_case``. Fails with SourceMissingError (where to get the files, where to put them, how to
    check them) when the files are absent.

``read_case(row: dict, ds_cfg: dict, raw_dir: Path) -> RawCase``
    Load one case into the prepared layout (channels-first image, slice axis first for volumes) with the
    mask already binarized to lesion 0/1 and the ignore mask (or None). Intensities are raw: the prepare
    stage normalizes and resizes, identically for every source.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np


class SourceError(ValueError):
    """A source file is malformed; the message names it."""


class SourceMissingError(FileNotFoundError):
    """A data set's files are absent; the message says where to get and put them."""


@dataclass
class RawCase:
    case_id: str
    image: np.ndarray                       # (C, *spatial), any numeric dtype
    mask: np.ndarray                        # spatial, uint8 0/1
    spacing: tuple[float, ...]              # mm, array order
    ignore: np.ndarray | None = None        # spatial, uint8 0/1
    affine: np.ndarray | None = None
    axis_order: tuple[int, ...] | None = None
    source: dict = field(default_factory=dict)


ADAPTERS = {
    "synthetic": "lesionbench.data.sources.synthetic",
    "folder": "lesionbench.data.sources.folder",
    "wmh": "lesionbench.data.sources.wmh",
    "lits": "lesionbench.data.sources.lits",
    "idrid": "lesionbench.data.sources.idrid",
    "references": "lesionbench.data.sources.references",
}


def get_adapter(source: str) -> ModuleType:
    try:
        return importlib.import_module(ADAPTERS[source])
    except KeyError:
        raise SourceError(f"unknown data source {source!r}; known: {sorted(ADAPTERS)}") from None
