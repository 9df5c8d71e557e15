"""Reference and prediction folders as other tools leave them (nnU-Net v2, plain PNG), made in code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lesionbench.io.images import write_nifti

NNUNET_JSONS = ("dataset.json", "plans.json", "predict_from_raw_data_args.json")
AFFINE = np.array([[-0.8, 0, 0, 12.0], [0, 0.8, 0, -7.5], [0, 0, 2.5, 3.0], [0, 0, 0, 1]])


def _blobs(shape, centres, radius):
    grid = np.indices(shape)
    mask = np.zeros(shape, np.uint8)
    for c in centres:
        mask[sum((g - ci) ** 2 for g, ci in zip(grid, c)) <= radius**2] = 1
    return mask


def volume_cases(n: int = 4, shape=(28, 24, 6), seed: int = 0) -> dict[str, np.ndarray]:
    """Label maps (file order x, y, z): lesions of label 1 of a few sizes, one case with a label-2 region."""
    rng = np.random.default_rng(seed)
    cases = {}
    for i in range(n):
        labels = np.zeros(shape, np.uint8)
        for _ in range(2 + i % 2):
            c = [int(rng.integers(4, s - 4)) if s > 8 else int(rng.integers(1, s - 1)) for s in shape]
            labels |= _blobs(shape, [c], float(rng.choice([1.0, 1.6, 2.5])))
        cases[f"case_{i:03d}"] = labels
    return cases


def perturb(labels: np.ndarray, seed: int, drop_lesion: bool = False) -> np.ndarray:
    """A prediction: the reference shifted by one voxel along x, plus a false positive, optionally missing
    a lesion (so the two models differ in detection and boundaries)."""
    rng = np.random.default_rng(seed)
    pred = np.roll(labels, 1, axis=0).copy()
    fp = tuple(int(rng.integers(0, s)) for s in labels.shape)
    pred[fp] = 1
    if drop_lesion:
        from lesionbench.components import label_components

        comp, n = label_components(pred > 0)
        if n > 1:
            pred[comp == 1] = 0
    return pred


def nnunet_fixture(root: Path, n: int = 4) -> tuple[Path, dict[str, Path], dict]:
    """(raw data set folder, {model: predictions folder}, {case: reference labels}) in nnU-Net v2 layout."""
    dataset = root / "nnUNet_raw" / "Dataset501_Lesions"
    (dataset / "labelsTs").mkdir(parents=True)
    (dataset / "imagesTs").mkdir()
    (dataset / "dataset.json").write_text(
        json.dumps(
            {
                "channel_names": {"0": "CT"},
                "labels": {"background": 0, "lesion": 1},
                "numTraining": 0,
                "file_ending": ".nii.gz",
            }
        )
    )
    refs = volume_cases(n)
    preds = {"nnunet_3d": root / "pred_3d", "nnunet_2d": root / "pred_2d"}
    for folder in preds.values():
        folder.mkdir()
        for name in NNUNET_JSONS:
            (folder / name).write_text(json.dumps({"written_by": "nnU-Net", "file": name}))
    for k, (cid, labels) in enumerate(refs.items()):
        write_nifti(labels, AFFINE, dataset / "labelsTs" / f"{cid}.nii.gz", spacing=(0.8, 0.8, 2.5))
        image = labels.astype(np.float32) * 100 + np.random.default_rng(k).normal(0, 5, labels.shape)
        write_nifti(
            image.astype(np.float32), AFFINE, dataset / "imagesTs" / f"{cid}_0000.nii.gz", spacing=(0.8, 0.8, 2.5)
        )
        write_nifti(perturb(labels, k), AFFINE, preds["nnunet_3d"] / f"{cid}.nii.gz", spacing=(0.8, 0.8, 2.5))
        write_nifti(
            perturb(labels, 100 + k, drop_lesion=True),
            AFFINE,
            preds["nnunet_2d"] / f"{cid}.nii.gz",
            spacing=(0.8, 0.8, 2.5),
        )
    return dataset, preds, refs


def png_fixture(root: Path, n: int = 4, shape=(40, 48)) -> tuple[Path, dict[str, Path], dict]:
    """(masks folder, {model: folder}, {case: reference 0/255 mask}) of 2D PNG masks."""
    rng = np.random.default_rng(7)
    refs_dir = root / "png_refs"
    refs_dir.mkdir(parents=True)
    preds = {"model_a": root / "png_a", "model_b": root / "png_b"}
    for folder in preds.values():
        folder.mkdir()
    refs = {}
    for i in range(n):
        centres = [(int(rng.integers(5, shape[0] - 5)), int(rng.integers(5, shape[1] - 5))) for _ in range(3)]
        mask = np.zeros(shape, np.uint8)
        for c, r in zip(centres, (1.0, 2.2, 4.0)):
            mask |= _blobs(shape, [c], r)
        cid = f"img{i:02d}"
        refs[cid] = mask
        Image.fromarray(mask * 255).save(refs_dir / f"{cid}.png")
        Image.fromarray(perturb(mask, i) * 255).save(preds["model_a"] / f"{cid}.png")
        Image.fromarray(perturb(mask, 50 + i, drop_lesion=True) * 255).save(preds["model_b"] / f"{cid}.png")
    return refs_dir, preds, refs
