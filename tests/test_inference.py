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
from lesionbench.training.loop import CHECKPOINT_FORMAT
from lesionbench.training.transforms import predict_probabilities

torch.set_num_threads(1)
TINY = {"encoder": "mit_b0", "encoder_depth": 5, "decoder_channels": [16, 8, 8, 8, 8]}


class Brightness(torch.nn.Module):
    """A stand-in model whose logit is the first channel: foreground where the image is bright."""

    def forward(self, x):
        return (x[:, :1] - 1.0) * 50


def save_checkpoint(path, in_channels, input_size=32):
    torch.manual_seed(0)
    model = build_model("hybrid_transformer", TINY, in_channels)
    torch.save({"format": CHECKPOINT_FORMAT, "model_name": "hybrid_transformer", "model_config": TINY,
                "in_channels": in_channels, "ndim": 2, "input_size": input_size, "input_divisor": 32,
                "epoch": 1, "val_dice": 0.5, "state_dict": model.state_dict()}, path)
    return model


def test_probabilities_keep_shape_2d_and_3d():
    model = Brightness()
    img2 = np.zeros((3, 50, 70), np.float32)
    img2[:, 10:20, 30:45] = 2.0
    prob = predict_probabilities(model, img2, input_size=64, divisor=32)
    assert prob.shape == (50, 70) and prob.dtype == np.float32
    assert prob[15, 37] > 0.99 and prob[40, 5] < 0.01  # resized to 64x64 and back: lesion stays in place
    vol = np.zeros((1, 5, 36, 44), np.float32)
    vol[0, 2, 5:9, 30:40] = 2.0
    prob = predict_probabilities(model, vol, input_size=32, divisor=32, batch_size=2)
    assert prob.shape == (5, 36, 44)
    np.testing.assert_array_equal(prob > 0.5, vol[0] > 1)  # slices padded to 64x64, cropped back exactly


def test_predict_case_applies_postprocessing():
    img = np.zeros((1, 3, 40, 40), np.float32)
    img[0, 1, 5:10, 5:10] = 2.0   # 25 voxels: kept
    img[0, 1, 30, 30] = 2.0       # 1 voxel: removed
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
        save_case(Case(cid, rng.normal(size=(1, 5, 36, 40)).astype(np.float32), np.zeros((5, 36, 40), np.uint8),
                       spacing=(2.5, 0.9, 0.8), affine=affine, axis_order=(2, 0, 1), dataset="t"), prepared)
    split = _split(tmp_path, ["v1", "v2"], ["train", "test"])
    save_checkpoint(tmp_path / "best.pt", 1)
    out = tmp_path / "pred"
    written = predict_dataset(tmp_path / "best.pt", prepared, split, out, {"threshold": 0.5,
                              "min_component_voxels": 0}, device="cpu")
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
        save_case(Case(cid, np.random.default_rng(1).normal(size=(3, 50, 60)).astype(np.float32),
                       np.zeros((50, 60), np.uint8), spacing=(1.0, 1.0)), prepared)
    split = _split(tmp_path, ["a", "b", "c"], ["train", "test", "test"])
    reference = save_checkpoint(tmp_path / "best.pt", 3)
    written = predict_dataset(tmp_path / "best.pt", prepared, split, tmp_path / "pred",
                              {"threshold": 0.5, "min_component_voxels": 2}, device="cpu")
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
    with pytest.raises(CheckpointError, match="other.pt: not a lesionbench best.pt"):
        load_model(tmp_path / "other.pt")
    prepared = tmp_path / "prepared"
    save_case(Case("g", np.zeros((1, 32, 32), np.float32), np.zeros((32, 32), np.uint8), (1.0, 1.0)), prepared)
    split = _split(tmp_path, ["g"], ["test"])
    save_checkpoint(tmp_path / "best.pt", 3)
    with pytest.raises(ValueError, match="g: 1 image channels.*trained on 3"):
        predict_dataset(tmp_path / "best.pt", prepared, split, tmp_path / "pred", {"threshold": 0.5}, device="cpu")
