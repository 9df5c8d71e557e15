import hashlib

import numpy as np
import pytest
from scipy import ndimage

from lesionbench.components import label_components, size_fractions
from lesionbench.data import synthetic
from lesionbench.io.images import read_nifti, read_raster

CFGS = {
    "fundus": {"kind": "fundus", "n_cases": 6, "size": [96, 96], "seed": 7},
    "mri": {"kind": "mri", "n_cases": 3, "size": [48, 48, 12], "spacing": [1.0, 1.0, 3.0], "seed": 7},
    "ct": {"kind": "ct", "n_cases": 3, "size": [48, 48, 12], "spacing": [1.5, 1.5, 2.5], "seed": 7},
}


def digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("kind", sorted(CFGS))
def test_same_seed_gives_the_same_bytes(tmp_path, kind):
    synthetic.generate(CFGS[kind], tmp_path / "a")
    synthetic.generate(CFGS[kind], tmp_path / "b")
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert len(a) == 2 * CFGS[kind]["n_cases"]
    assert a == b


@pytest.mark.parametrize("kind", sorted(CFGS))
def test_other_seed_differs_and_cases_do_not_depend_on_count(tmp_path, kind):
    cfg = CFGS[kind]
    synthetic.generate(cfg, tmp_path / "a")
    synthetic.generate({**cfg, "seed": cfg["seed"] + 1}, tmp_path / "b")
    synthetic.generate({**cfg, "n_cases": 1}, tmp_path / "c")
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a != b
    assert all(a[k] == v for k, v in c.items())


def test_fundus_is_rgb_with_small_lesions_and_some_empty_images(tmp_path):
    cfg = {"kind": "fundus", "n_cases": 30, "size": [128, 128], "seed": 3}
    ids = synthetic.generate(cfg, tmp_path)
    sizes, empty = [], 0
    for case_id in ids:
        image = read_raster(tmp_path / "images" / f"{case_id}.png")
        labels = read_raster(tmp_path / "masks" / f"{case_id}.png")
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert set(np.unique(labels)) <= {0, 1}
        lab, n = label_components(labels)
        empty += n == 0
        sizes += list(size_fractions(lab, n) * 128 * 128)
        # the field of view is a bright disc: its centre is brighter than the corner
        assert image[64, 64].sum() > image[2, 2].sum()
    assert empty >= 1
    assert min(sizes) <= 12  # lesions down to about ten pixels (the smallest a laptop-budget model detects)
    assert max(sizes) >= 10 * min(sizes)  # a wide size range


@pytest.mark.parametrize("kind", sorted(CFGS))
def test_lesions_stay_apart_under_the_default_evaluation_dilation(tmp_path, kind):
    """Every drawn lesion is one evaluated lesion: dilating each by the default config's lesion dilation
    (fundus 2 mm, MRI/CT 3 mm, a spacing-aware ball) merges none of them."""
    dilation_mm = {"fundus": 2.0, "mri": 3.0, "ct": 3.0}[kind]
    cfg = {**CFGS[kind], "n_cases": 4}
    spacing = tuple(cfg.get("spacing", (1.0, 1.0)))
    ball = synthetic.gap_structure(dilation_mm, spacing)
    counted = 0
    for case_id in synthetic.generate(cfg, tmp_path):
        if kind == "fundus":
            labels = read_raster(tmp_path / "masks" / f"{case_id}.png")
        else:
            labels = read_nifti(tmp_path / "masks" / f"{case_id}.nii.gz")[0]
        lesions = labels == 1
        _, n = label_components(lesions)
        _, n_dilated = label_components(ndimage.binary_dilation(lesions, ball))
        assert n_dilated == n
        counted += n
    assert counted >= 8


def test_mri_has_anisotropic_spacing_and_an_ignore_label(tmp_path):
    cfg = {"kind": "mri", "n_cases": 6, "size": [48, 48, 12], "spacing": [1.0, 1.0, 3.0], "seed": 5}
    ids = synthetic.generate(cfg, tmp_path)
    labels_seen = set()
    for case_id in ids:
        image, affine, spacing = read_nifti(tmp_path / "images" / f"{case_id}.nii.gz")
        labels, _, _ = read_nifti(tmp_path / "masks" / f"{case_id}.nii.gz")
        assert spacing == (1.0, 1.0, 3.0)
        np.testing.assert_allclose(np.diag(affine)[:3], [1.0, 1.0, 3.0])
        assert image.shape == labels.shape == (48, 48, 12)
        labels_seen |= set(np.unique(labels).tolist())
        # lesions are hyperintense relative to the brain around them
        if (labels == 1).any():
            assert image[labels == 1].mean() > image[image > 0.1].mean()
    assert labels_seen == {0, 1, 2}


def test_ct_lesions_are_hypodense_in_hounsfield_units(tmp_path):
    cfg = {"kind": "ct", "n_cases": 3, "size": [64, 64, 12], "spacing": [1.5, 1.5, 2.5], "seed": 9}
    for case_id in synthetic.generate(cfg, tmp_path):
        image, _, _ = read_nifti(tmp_path / "images" / f"{case_id}.nii.gz")
        labels, _, _ = read_nifti(tmp_path / "masks" / f"{case_id}.nii.gz")
        assert image.dtype == np.int16 and image.min() >= -1024
        lesion_hu = image[labels == 1].mean()
        assert 0 < lesion_hu < 60  # darker than the liver (55-70 HU), low contrast
