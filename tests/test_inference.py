"""Inference: whole images and volumes keep their geometry; predictions are binary and postprocessed."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lesionbench.inference import CheckpointError, load_model, predict_case, predict_dataset
from lesionbench.io.cases import Case, read_meta, save_case
from lesionbench.io.predictions import read_prediction
from lesionbench.models import build_model
from lesionbench.training.config import INFERENCE_DEFAULTS, TrainingConfigError, resolve_inference_config
from lesionbench.training.loop import CHECKPOINT_FORMAT
from lesionbench.training.tiling import gaussian_weights, sliding_window_logits, tile_grid, tile_starts
from lesionbench.training.transforms import predict_probabilities

torch.set_num_threads(1)
TINY = {"encoder": "mit_b0", "encoder_depth": 5, "decoder_channels": [16, 8, 8, 8, 8]}


class Brightness(torch.nn.Module):
    """A stand-in model whose logit is the first channel: foreground where the image is bright."""

    def forward(self, x):
        return (x[:, :1] - 1.0) * 50


class Constant(torch.nn.Module):
    """Every pixel of every tile gets the same logit."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full((x.shape[0], 1) + tuple(x.shape[-2:]), self.value)


class TileMean(torch.nn.Module):
    """Each tile's logit is the mean of its first channel: a different constant per tile."""

    def forward(self, x):
        return x[:, :1].mean(dim=(-2, -1), keepdim=True).expand(-1, -1, *x.shape[-2:])


def save_checkpoint(path, in_channels, input_size=32, mode=None):
    torch.manual_seed(0)
    model = build_model("hybrid_transformer", TINY, in_channels)
    info = {
        "format": CHECKPOINT_FORMAT,
        "model_name": "hybrid_transformer",
        "model_config": TINY,
        "in_channels": in_channels,
        "ndim": 2,
        "input_size": input_size,
        "input_divisor": 32,
        "epoch": 1,
        "val_dice": 0.5,
        "state_dict": model.state_dict(),
    }
    if mode is not None:
        info["mode"] = mode
    torch.save(info, path)
    return model


# ---- sliding windows ---------------------------------------------------------------------------------


def test_tile_starts_hand_computed_and_cover_every_pixel():
    # 100 px, tiles of 32 at overlap 0.5: k = ceil(68 / 16) + 1 = 6 tiles, step 68 / 5 = 13.6
    assert tile_starts(100, 32, 0.5) == [0, 14, 27, 41, 54, 68]
    assert tile_starts(32, 32, 0.5) == [0]
    assert tile_starts(64, 32, 0.0) == [0, 32]
    assert tile_starts(65, 32, 0.0) == [0, 16, 33]
    for n, tile, overlap in [(33, 32, 0.5), (160, 160, 0.5), (1536, 512, 0.5), (1024, 512, 0.25), (97, 16, 0.9)]:
        starts = tile_starts(n, tile, overlap)
        covered = np.zeros(n, int)
        for s in starts:
            covered[s : s + tile] += 1
        assert starts[0] == 0 and starts[-1] + tile == n and (covered >= 1).all(), (n, tile, overlap)
        gaps = np.diff(starts)
        assert (gaps <= np.ceil(tile * (1 - overlap))).all()  # neighbours overlap by >= overlap * tile
    corners = tile_grid((50, 70), 32, 0.5)
    hits = np.zeros((50, 70), int)
    for y, x in corners:
        hits[y : y + 32, x : x + 32] += 1
    assert hits.min() >= 1 and len(corners) == len(tile_starts(50, 32, 0.5)) * len(tile_starts(70, 32, 0.5))
    with pytest.raises(ValueError, match="shorter than the tile"):
        tile_starts(20, 32, 0.5)


def test_gaussian_importance_map_is_nnunets():
    from scipy.ndimage import gaussian_filter

    tile = 33  # odd: the centre is a pixel, as in nnU-Net's delta-filtered map
    delta = np.zeros((tile, tile))
    delta[16, 16] = 1
    reference = gaussian_filter(delta, tile / 8, mode="constant", cval=0, truncate=10)
    reference /= reference.max()
    w = gaussian_weights(tile).numpy()
    np.testing.assert_allclose(w, reference, rtol=1e-5, atol=1e-12)
    assert w[16, 16] == 1 and w.min() > 0


def test_constant_logit_model_predicts_a_constant():
    image = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 70, 90)).astype(np.float32))
    logits = sliding_window_logits(Constant(2.5), image, 32, 0.5, batch_size=5)
    assert logits.shape == (70, 90)
    np.testing.assert_allclose(logits.numpy(), 2.5, rtol=1e-6)
    prob = predict_probabilities(Constant(-1.0), image.numpy(), input_size=32, divisor=32, tile_overlap=0.3)
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(1.0)), rtol=1e-6)


def test_overlapping_tiles_blend_by_gaussian_weight():
    # 32 x 48 plane, tiles of 32: x starts [0, 16]. Pixel (16, 20) lies at tile-x 20 in the first tile and
    # tile-x 4 in the second; each tile predicts its own mean.
    image = np.zeros((1, 32, 48), np.float32)
    image[0, :, 32:] = 3.0
    m1, m2 = image[0, :, :32].mean(), image[0, :, 16:].mean()  # 0 and 1.5
    w = gaussian_weights(32).numpy()
    logits = sliding_window_logits(TileMean(), torch.from_numpy(image), 32, 0.5, batch_size=1).numpy()
    expected = (w[16, 20] * m1 + w[16, 4] * m2) / (w[16, 20] + w[16, 4])
    assert logits[16, 20] == pytest.approx(expected, rel=1e-6)
    assert logits[16, 0] == pytest.approx(m1) and logits[16, 47] == pytest.approx(m2)


def test_tiled_prediction_does_not_depend_on_the_tile_batch_size():
    torch.manual_seed(0)
    model = build_model("hybrid_transformer", TINY, 3).eval()
    image = np.random.default_rng(1).normal(size=(3, 70, 90)).astype(np.float32)
    probs = [predict_probabilities(model, image, input_size=32, divisor=32, batch_size=b) for b in (1, 4, 64)]
    for other in probs[1:]:
        np.testing.assert_allclose(other, probs[0], rtol=0, atol=1e-6)
    vol = np.random.default_rng(2).normal(size=(1, 3, 40, 70)).astype(np.float32)
    m1 = build_model("hybrid_transformer", TINY, 1).eval()
    a, b = (predict_probabilities(m1, vol, 32, 32, batch_size=b, volume_tile_size=32) for b in (1, 7))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_volume_slices_are_tiled_only_when_larger_than_the_tile():
    vol = np.zeros((1, 3, 70, 90), np.float32)
    vol[0, 1, 20:30, 60:80] = 2.0
    whole = predict_probabilities(Brightness(), vol, 32, 32, volume_tile_size=512)
    tiled = predict_probabilities(Brightness(), vol, 32, 32, volume_tile_size=40)  # tiles of 64 (divisor 32)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    np.testing.assert_array_equal(tiled > 0.5, vol[0] > 1)
    # a per-tile model shows the tiling: whole slices give one value per slice, tiles blend several
    assert np.unique(predict_probabilities(TileMean(), vol, 32, 32, volume_tile_size=512)[1]).size == 1
    assert np.unique(predict_probabilities(TileMean(), vol, 32, 32, volume_tile_size=40)[1]).size > 1


def test_inference_config_defaults_match_the_schema_and_errors_name_the_key():
    from pathlib import Path

    import yaml

    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["inference"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == INFERENCE_DEFAULTS
    assert resolve_inference_config(None) == INFERENCE_DEFAULTS
    with pytest.raises(TrainingConfigError, match=r"inference\.tile_overlap"):
        resolve_inference_config({"tile_overlap": 1.0})
    with pytest.raises(TrainingConfigError, match=r"unknown keys \['tile'\]"):
        resolve_inference_config({"tile": 3})


def test_probabilities_keep_shape_2d_and_3d():
    model = Brightness()
    img2 = np.zeros((3, 50, 70), np.float32)
    img2[:, 10:20, 30:45] = 2.0
    prob = predict_probabilities(model, img2, input_size=64, divisor=32, mode="resize")
    assert prob.shape == (50, 70) and prob.dtype == np.float32
    assert prob[15, 37] > 0.99 and prob[40, 5] < 0.01  # resized to 64x64 and back: lesion stays in place
    # patch mode: padded to 64 x 70, two overlapping 64-pixel tiles along x; a pixel-wise model is exact
    prob = predict_probabilities(model, img2, input_size=64, divisor=32)
    assert prob.shape == (50, 70)
    np.testing.assert_array_equal(prob > 0.5, img2[0] > 1)
    vol = np.zeros((1, 5, 36, 44), np.float32)
    vol[0, 2, 5:9, 30:40] = 2.0
    prob = predict_probabilities(model, vol, input_size=32, divisor=32, batch_size=2)
    assert prob.shape == (5, 36, 44)
    np.testing.assert_array_equal(prob > 0.5, vol[0] > 1)  # slices padded to 64x64, cropped back exactly


def test_checkpoint_mode_decides_the_2d_geometry(tmp_path):
    prepared = tmp_path / "prepared"
    image = np.random.default_rng(3).normal(size=(3, 70, 90)).astype(np.float32)
    save_case(Case("x", image, np.zeros((70, 90), np.uint8), spacing=(1.0, 1.0)), prepared)
    reference = save_checkpoint(tmp_path / "patch.pt", 3, mode="patch").eval()
    save_checkpoint(tmp_path / "old.pt", 3)  # no mode recorded: an earlier, resize-trained checkpoint
    model, info = load_model(tmp_path / "patch.pt")
    got = predict_case(model, info, image, 0.5, 0, inference={"tile_overlap": 0.25})
    expected = predict_probabilities(reference, image, 32, 32, tile_overlap=0.25) >= 0.5
    np.testing.assert_array_equal(got, expected)
    model, info = load_model(tmp_path / "old.pt")
    got = predict_case(model, info, image, 0.5, 0)
    np.testing.assert_array_equal(got, predict_probabilities(reference, image, 32, 32, mode="resize") >= 0.5)


def test_predict_case_applies_postprocessing():
    img = np.zeros((1, 3, 40, 40), np.float32)
    img[0, 1, 5:10, 5:10] = 2.0  # 25 voxels: kept
    img[0, 1, 30, 30] = 2.0  # 1 voxel: removed
    info = {"input_size": 32, "input_divisor": 32}
    mask = predict_case(Brightness(), info, img, threshold=0.5, min_component_voxels=3)
    assert mask.dtype == bool and mask.shape == (3, 40, 40)
    assert mask.sum() == 25 and not mask[1, 30, 30]


def _split(tmp_path, ids, splits):
    pd.DataFrame({"case_id": ids, "split": splits}).to_csv(tmp_path / "split.csv", index=False)
    return tmp_path / "split.csv"


def test_volume_predictions_round_trip_spacing_and_affine(tmp_path):
    prepared = tmp_path / "prepared"
    affine = np.array([[0.0, -0.8, 0.0, 10.0], [0.9, 0.0, 0.0, -5.0], [0.0, 0.0, 2.5, 3.0], [0, 0, 0, 1]])
    rng = np.random.default_rng(0)
    for cid in ("v1", "v2"):
        # prepared layout (k, i, j) of a source volume (i, j, k) = (36, 40, 5)
        save_case(
            Case(
                cid,
                rng.normal(size=(1, 5, 36, 40)).astype(np.float32),
                np.zeros((5, 36, 40), np.uint8),
                spacing=(2.5, 0.9, 0.8),
                affine=affine,
                axis_order=(2, 0, 1),
                dataset="t",
            ),
            prepared,
        )
    split = _split(tmp_path, ["v1", "v2"], ["train", "test"])
    save_checkpoint(tmp_path / "best.pt", 1)
    out = tmp_path / "pred"
    written = predict_dataset(
        tmp_path / "best.pt", prepared, split, out, {"threshold": 0.5, "min_component_voxels": 0}, device="cpu"
    )
    assert [p.name for p in written] == ["v2.nii.gz"]
    img = nib.load(str(written[0]))
    assert img.shape == (36, 40, 5)
    np.testing.assert_allclose(img.affine, affine)
    np.testing.assert_allclose(img.header.get_zooms(), (0.9, 0.8, 2.5), rtol=1e-6)
    data = np.asarray(img.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1}
    assert read_prediction(out, read_meta(prepared, "v2")).shape == (5, 36, 40)


def test_image_predictions_are_binary_png_at_prepared_size(tmp_path):
    prepared = tmp_path / "prepared"
    for cid in ("a", "b", "c"):
        save_case(
            Case(
                cid,
                np.random.default_rng(1).normal(size=(3, 50, 60)).astype(np.float32),
                np.zeros((50, 60), np.uint8),
                spacing=(1.0, 1.0),
            ),
            prepared,
        )
    split = _split(tmp_path, ["a", "b", "c"], ["train", "test", "test"])
    reference = save_checkpoint(tmp_path / "best.pt", 3)
    written = predict_dataset(
        tmp_path / "best.pt",
        prepared,
        split,
        tmp_path / "pred",
        {"threshold": 0.5, "min_component_voxels": 2},
        device="cpu",
    )
    assert [p.name for p in written] == ["b.png", "c.png"]
    for p in written:
        png = np.asarray(Image.open(p))
        assert png.shape == (50, 60) and set(np.unique(png)) <= {0, 255}
    model, info = load_model(tmp_path / "best.pt")
    assert not model.training and info["in_channels"] == 3 and "state_dict" not in info
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path / "nope.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: not a lesionbench best\.pt"):
        load_model(tmp_path / "other.pt")
    prepared = tmp_path / "prepared"
    save_case(Case("g", np.zeros((1, 32, 32), np.float32), np.zeros((32, 32), np.uint8), (1.0, 1.0)), prepared)
    split = _split(tmp_path, ["g"], ["test"])
    save_checkpoint(tmp_path / "best.pt", 3)
    with pytest.raises(ValueError, match=r"g: 1 image channels.*trained on 3"):
        predict_dataset(tmp_path / "best.pt", prepared, split, tmp_path / "pred", {"threshold": 0.5}, device="cpu")
