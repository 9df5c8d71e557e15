"""Training protocol: config merge, sampling, augmentation, schedule, determinism and resume."""

import itertools
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from lesionbench.io.cases import Case, CaseError, load_case, save_case
from lesionbench.models import build_model
from lesionbench.training import (
    RESUME_DIR,
    Augmentation,
    SliceSampler,
    TrainingConfigError,
    TrainingDataError,
    dice_score,
    predict_probabilities,
    resolve_training_config,
    train,
    validation_dice,
)
from lesionbench.training.optim import dice_bce_loss, warmup_cosine
from lesionbench.training.sampling import patch_corner
from lesionbench.training.transforms import pad_amounts, pad_image

torch.set_num_threads(1)

TINY = {"encoder": "mit_b0", "encoder_depth": 5, "decoder_channels": [16, 8, 8, 8, 8]}
SHORT = {
    "input_size": 32,
    "batch_size": 2,
    "epochs": 3,
    "steps_per_epoch": 2,
    "patience": 0,
    "warmup_epochs": 1,
    "lr": 0.002,
}


def make_dataset(root, ndim, n_train=3, channels=1, seed=0, shape=None):
    """Tiny prepared cases with one bright disc lesion each (two train-free cases: val, test)."""
    rng = np.random.default_rng(seed)
    shape = shape or ((40, 36) if ndim == 2 else (4, 36, 40))
    ids, splits = [], []
    for i in range(n_train + 2):
        image = rng.normal(0, 0.3, (channels,) + shape).astype(np.float32)
        mask = np.zeros(shape, np.uint8)
        yy, xx = np.mgrid[: shape[-2], : shape[-1]]
        disc = (yy - 12 - i) ** 2 + (xx - 15) ** 2 <= 16
        if ndim == 2:
            mask[disc] = 1
        else:
            mask[1:3][:, disc] = 1
        image[:, mask.astype(bool)] += 2.0
        cid = f"case{i:02d}"
        spacing = (1.0, 1.0) if ndim == 2 else (3.0, 0.9, 0.8)
        save_case(Case(cid, image, mask, spacing, dataset="tiny"), root / "prepared")
        ids.append(cid)
        splits.append("train" if i < n_train else ("val" if i == n_train else "test"))
    pd.DataFrame({"case_id": ids, "split": splits}).to_csv(root / "split.csv", index=False)
    return root / "prepared", root / "split.csv"


def weights(path, key):
    return torch.load(path, map_location="cpu", weights_only=True)[key]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---- config ---------------------------------------------------------------------------------------


def test_merge_global_then_dataset_overrides():
    cfg = resolve_training_config(
        {"lr": 0.01, "augmentation": {"flip": False}}, {"lr": 0.02, "augmentation": {"intensity": 0.0}}
    )
    assert cfg["lr"] == 0.02
    assert cfg["augmentation"] == {"flip": False, "rot90": True, "intensity": 0.0}
    assert cfg["batch_size"] == 8 and cfg["encoder_weights"] is None and cfg["mode"] == "patch"


@pytest.mark.parametrize(
    "override,message",
    [
        ({"lr": 0}, r"training\.lr: must be a positive number"),
        ({"foreground_slice_ratio": 1.5}, "foreground_slice_ratio"),
        ({"epochs": 2, "warmup_epochs": 2}, "warmup_epochs"),
        ({"optimizer": "sgd"}, r"unknown keys \['optimizer'\]"),
        ({"augmentation": {"elastic": True}}, "augmentation.elastic"),
        ({"encoder_weights": "ssl"}, "encoder_weights"),
        ({"loss": {"dice_weight": 0, "bce_weight": 0}}, "loss"),
        ({"mode": "crop"}, r"training\.mode: must be one of \['patch', 'resize'\]"),
    ],
)
def test_config_errors_name_the_key(override, message):
    with pytest.raises(TrainingConfigError, match=message):
        resolve_training_config({}, override, where="ds/training")


# ---- schedule, loss, geometry ------------------------------------------------------------------------


def test_warmup_then_cosine():
    lrs = [warmup_cosine(s, 4, 20, 0.01) for s in range(20)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.01)
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    assert warmup_cosine(0, 0, 10, 0.0) == 1.0


def test_loss_values():
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    perfect = torch.tensor([[[[20.0, -20.0], [-20.0, -20.0]]]])
    assert dice_bce_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    zero = torch.zeros_like(target)  # p = 0.5 everywhere: BCE = ln 2, Dice = (1 + 1) / (2 + 1 + 1)
    assert dice_bce_loss(zero, target, 0.0, 1.0).item() == pytest.approx(math.log(2))
    assert dice_bce_loss(zero, target, 1.0, 0.0).item() == pytest.approx(0.5)


def test_padding_is_centred_with_channel_minimum():
    pads = pad_amounts((3, 5), (6, 5))
    assert pads == ((1, 2), (0, 0))
    img = np.stack([np.arange(15, dtype=np.float32).reshape(3, 5), -np.ones((3, 5), np.float32)])
    out = pad_image(img, pads)
    assert out.shape == (2, 6, 5)
    assert (out[0, 0] == 0).all() and (out[0, 4:] == 0).all() and (out[1] == -1).all()
    np.testing.assert_array_equal(out[:, 1:4], img)


def test_dice_score_ignores_and_handles_empty():
    a = np.array([[1, 1, 0, 0]])
    b = np.array([[1, 0, 0, 1]])
    assert dice_score(a, b) == pytest.approx(0.5)
    assert dice_score(a, b, ignore=np.array([[0, 0, 0, 1]])) == pytest.approx(2 / 3)
    assert dice_score(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


# ---- sampling and augmentation -------------------------------------------------------------------


def test_augmentation_keeps_image_and_mask_aligned():
    rng = np.random.default_rng(1)
    mask = (rng.random((12, 12)) > 0.7).astype(np.uint8)
    image = np.stack([mask * 5.0, mask * 2.0]).astype(np.float32)
    aug = Augmentation(flip=True, rot90=True, intensity=0.0)
    seen = set()
    for _ in range(30):
        img, msk = aug(image, mask, rng)
        np.testing.assert_array_equal(img[0] == 5.0, msk == 1)
        seen.add(msk.tobytes())
    assert len(seen) > 4  # flips and rotations do change the sample
    img, _ = Augmentation(False, False, 0.1)(image, mask, np.random.default_rng(0))
    assert not np.array_equal(img, image) and np.allclose(img, image, atol=0.5 + 0.1 * 5)


def test_sampler_volume_slices_foreground_ratio_and_crop(tmp_path):
    prepared, _split = make_dataset(tmp_path, 3, shape=(6, 40, 44))
    ids = ["case00", "case01", "case02"]
    sampler = SliceSampler(prepared, ids, 32, foreground_ratio=1.0)
    assert len(sampler) == 18 and len(sampler.fg_slices) == 6
    x, y = sampler.batch(16, np.random.default_rng(0))
    assert x.shape == (16, 1, 32, 32) and y.shape == (16, 1, 32, 32) and x.dtype == np.float32
    assert (y.reshape(16, -1).sum(1) > 0).all()  # crops around a lesion voxel keep it
    none = SliceSampler(prepared, ids, 48, foreground_ratio=0.0)  # padded up: 40x44 -> 48x48
    x, y = none.batch(64, np.random.default_rng(0))
    assert x.shape == (64, 1, 48, 48)
    share = (y.reshape(64, -1).sum(1) > 0).mean()
    assert 0.1 < share < 0.6  # 2 of 6 slices hold the lesion


def test_patch_corner_centres_and_clips():
    assert patch_corner(40, 80, 32) == 24  # centred: the voxel sits at patch index 16
    assert patch_corner(3, 80, 32) == 0  # shifted inside the image, voxel still in the patch
    assert patch_corner(79, 80, 32) == 48
    assert patch_corner(5, 20, 32) == 0  # image smaller than the patch: padded later


def test_sampler_2d_patches_at_native_resolution_centred_on_lesions(tmp_path):
    prepared = tmp_path / "prepared"
    image = np.arange(2 * 80 * 100, dtype=np.float32).reshape(2, 80, 100)
    mask = np.zeros((80, 100), np.uint8)
    mask[40, 50] = 1  # single-voxel lesions: the foreground patch must be centred on one of them
    mask[3, 95] = 1
    save_case(Case("big", image, mask, (1.0, 1.0)), prepared)
    sampler = SliceSampler(prepared, ["big"], 32, foreground_ratio=1.0)
    assert isinstance(sampler.cases[0].image, np.memmap) and sampler.cached == [None]  # read lazily
    x, y = sampler.batch(40, np.random.default_rng(0))
    assert x.shape == (40, 2, 32, 32) and y.shape == (40, 1, 32, 32)
    seen = set()
    for xb, yb in zip(x, y):
        top, left = int(xb[0, 0, 0]) // 100, int(xb[0, 0, 0]) % 100
        np.testing.assert_array_equal(xb, image[:, top : top + 32, left : left + 32])  # a crop, never resized
        np.testing.assert_array_equal(yb[0], mask[top : top + 32, left : left + 32])
        seen.add((top, left))
    assert seen == {(24, 34), (0, 68)}  # (40, 50) at the patch centre; (3, 95) shifted inside the image
    anywhere = SliceSampler(prepared, ["big"], 32, foreground_ratio=0.0)
    x, _ = anywhere.batch(64, np.random.default_rng(1))
    corners = {(int(v) // 100, int(v) % 100) for v in x[:, 0, 0, 0]}
    assert len(corners) > 30 and all(0 <= t <= 48 and 0 <= c <= 68 for t, c in corners)


def test_sampler_pads_2d_images_smaller_than_the_patch(tmp_path):
    prepared, _ = make_dataset(tmp_path, 2, channels=3)  # 40 x 36 images
    sampler = SliceSampler(prepared, ["case00", "case01"], 64, 1.0)
    x, y = sampler.batch(4, np.random.default_rng(0))
    assert x.shape == (4, 3, 64, 64)
    assert (y[:, 0, :12].sum() == 0) and (y[:, 0, -12:].sum() == 0)  # 12 rows of padding above and below
    assert (y.reshape(4, -1).sum(1) > 0).all()


def test_sampler_resizes_2d_images(tmp_path):
    prepared, _ = make_dataset(tmp_path, 2, channels=3)
    sampler = SliceSampler(prepared, ["case00", "case01"], 32, 0.5, mode="resize")
    assert sampler.cached[0][0].shape == (3, 32, 32)  # the whole 40 x 36 image, resized once
    x, y = sampler.batch(3, np.random.default_rng(0))
    assert x.shape == (3, 3, 32, 32) and set(np.unique(y)) <= {0.0, 1.0}
    a = sampler.batch(5, np.random.default_rng(7))
    b = sampler.batch(5, np.random.default_rng(7))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_sampler_errors_name_the_problem(tmp_path):
    prepared, _ = make_dataset(tmp_path, 2)
    with pytest.raises(TrainingDataError, match="no training cases"):
        SliceSampler(prepared, [], 32, 0.5)
    save_case(Case("rgb", np.zeros((3, 8, 8), np.float32), np.zeros((8, 8), np.uint8), (1.0, 1.0)), prepared)
    with pytest.raises(TrainingDataError, match="rgb"):
        SliceSampler(prepared, ["case00", "rgb"], 32, 0.5)


# ---- training runs ----------------------------------------------------------------------------------


def test_training_outputs_and_same_seed_same_weights(tmp_path):
    prepared, split = make_dataset(tmp_path, 2, channels=3)
    a = train(
        prepared, split, tmp_path / "a", "hybrid_transformer", TINY, SHORT, seed=5, dataset="tiny", progress=False
    )
    train(prepared, split, tmp_path / "b", "hybrid_transformer", TINY, SHORT, seed=5, dataset="tiny", progress=False)
    assert_same_weights(weights(tmp_path / "a" / "last.pt", "model"), weights(tmp_path / "b" / "last.pt", "model"))
    assert_same_weights(
        weights(tmp_path / "a" / "best.pt", "state_dict"), weights(tmp_path / "b" / "best.pt", "state_dict")
    )
    log = pd.read_csv(tmp_path / "a" / "train_log.csv")
    assert list(log.columns) == ["epoch", "train_loss", "val_dice", "lr", "seconds"]
    assert log["epoch"].tolist() == [1, 2, 3]
    assert log["lr"].iloc[0] == pytest.approx(0.002) and log["lr"].iloc[-1] == pytest.approx(0.002 * 0.01)
    assert a["best_val_dice"] == log["val_dice"].max() and a["finished"]
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["seed"] == 5 and cfg["dataset"] == "tiny" and cfg["in_channels"] == 3
    assert cfg["training"]["input_size"] == 32 and cfg["model_config"]["encoder"] == "mit_b0"
    best = torch.load(tmp_path / "a" / "best.pt", map_location="cpu", weights_only=True)
    assert best["epoch"] == a["best_epoch"] and best["val_dice"] == a["best_val_dice"]
    assert not (tmp_path / "a" / RESUME_DIR).exists()  # removed once training has ended
    c = train(
        prepared, split, tmp_path / "c", "hybrid_transformer", TINY, SHORT, seed=6, dataset="tiny", progress=False
    )
    assert not torch.equal(
        weights(tmp_path / "a" / "last.pt", "model")["segmentation_head.0.weight"],
        weights(tmp_path / "c" / "last.pt", "model")["segmentation_head.0.weight"],
    )
    assert c["epochs_run"] == 3


def test_2d_image_larger_than_the_patch_trains_in_both_modes(tmp_path):
    prepared, split = make_dataset(tmp_path, 2, channels=3, shape=(70, 90))
    for mode in ("patch", "resize"):
        out = tmp_path / mode
        summary = train(
            prepared,
            split,
            out,
            "hybrid_transformer",
            TINY,
            {**SHORT, "mode": mode},
            seed=0,
            dataset="tiny",
            progress=False,
            inference={"tile_overlap": 0.25},
        )
        best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
        assert best["mode"] == mode and best["input_size"] == 32 and summary["finished"]
        assert 0 <= summary["best_val_dice"] <= 1
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["training"]["mode"] == mode and cfg["inference"]["tile_overlap"] == 0.25
    assert not torch.equal(
        weights(tmp_path / "patch" / "last.pt", "model")["segmentation_head.0.weight"],
        weights(tmp_path / "resize" / "last.pt", "model")["segmentation_head.0.weight"],
    )


def test_validation_predicts_as_inference_does(tmp_path):
    prepared, _ = make_dataset(tmp_path, 2, channels=3, shape=(70, 90))
    torch.manual_seed(0)
    model = build_model("hybrid_transformer", TINY, 3).eval()
    case = load_case(prepared, "case03")
    for threshold in (0.3, 0.5, 0.7):
        pred = predict_probabilities(model, case.image, 32, 32, tile_overlap=0.25) >= threshold
        expected = dice_score(pred, case.mask)
        got = validation_dice(
            model, prepared, ["case03"], 32, 32, threshold, torch.device("cpu"), inference={"tile_overlap": 0.25}
        )
        assert got == pytest.approx(expected)


@pytest.mark.parametrize("remove_outputs", [False, True])
def test_interrupted_training_resumes_to_identical_weights(tmp_path, remove_outputs):
    prepared, split = make_dataset(tmp_path, 3)
    cfg = {**SHORT, "epochs": 4}
    full = tmp_path / "full"
    train(prepared, split, full, "hybrid_transformer", TINY, cfg, seed=1, dataset="tiny", progress=False)
    part = tmp_path / "part"
    first = train(
        prepared, split, part, "hybrid_transformer", TINY, cfg, seed=1, dataset="tiny", progress=False, stop_after=2
    )
    assert first["epochs_run"] == 2 and not first["finished"]
    assert weights(part / "last.pt", "epoch") == 2
    if remove_outputs:  # what Snakemake does before re-running an interrupted job
        for name in ("best.pt", "last.pt", "train_log.csv", "config.json"):
            (part / name).unlink()
        assert (part / RESUME_DIR / "last.pt").is_file()
    second = train(prepared, split, part, "hybrid_transformer", TINY, cfg, seed=1, dataset="tiny", progress=False)
    assert second["epochs_run"] == 4 and second["finished"]
    assert_same_weights(weights(full / "last.pt", "model"), weights(part / "last.pt", "model"))
    assert_same_weights(weights(full / "best.pt", "state_dict"), weights(part / "best.pt", "state_dict"))
    for key in ("optimizer", "scheduler"):
        assert weights(full / "last.pt", key).keys() == weights(part / "last.pt", key).keys()
    cols = ["epoch", "train_loss", "val_dice", "lr"]
    pd.testing.assert_frame_equal(pd.read_csv(full / "train_log.csv")[cols], pd.read_csv(part / "train_log.csv")[cols])
    assert not (part / RESUME_DIR).exists()


def test_changed_protocol_trains_from_scratch(tmp_path):
    prepared, split = make_dataset(tmp_path, 2)
    out = tmp_path / "m"
    train(prepared, split, out, "hybrid_transformer", TINY, SHORT, seed=0, progress=False, stop_after=1)
    summary = train(
        prepared, split, out, "hybrid_transformer", TINY, {**SHORT, "lr": 0.001}, seed=0, progress=False, stop_after=1
    )
    assert summary["epochs_run"] == 1  # not resumed: the old checkpoint had another learning rate


def test_early_stopping_stops_and_is_recorded(tmp_path):
    prepared, split = make_dataset(tmp_path, 2)
    # nothing improves: no probability reaches the threshold (validation Dice stays 0), whatever the
    # batch-norm statistics do while training
    cfg = {**SHORT, "epochs": 6, "patience": 1, "lr": 1e-9, "warmup_epochs": 0, "val_threshold": 0.9999}
    summary = train(prepared, split, tmp_path / "m", "hybrid_transformer", TINY, cfg, seed=0, progress=False)
    assert summary["stopped_early"] and summary["epochs_run"] < 6
    assert weights(tmp_path / "m" / "last.pt", "stopped") is True
    assert len(pd.read_csv(tmp_path / "m" / "train_log.csv")) == summary["epochs_run"]


def test_training_errors_name_the_file(tmp_path):
    prepared, split = make_dataset(tmp_path, 2)
    pd.DataFrame({"case_id": ["case00"], "split": ["train"]}).to_csv(tmp_path / "noval.csv", index=False)
    with pytest.raises(TrainingDataError, match=r"noval\.csv.*no validation cases"):
        train(prepared, tmp_path / "noval.csv", tmp_path / "m", "hybrid_transformer", TINY, SHORT, progress=False)
    pd.DataFrame({"case_id": ["case00"], "fold": ["train"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(TrainingDataError, match=r"bad.csv: missing columns \['split'\]"):
        train(prepared, tmp_path / "bad.csv", tmp_path / "m", "hybrid_transformer", TINY, SHORT, progress=False)
    shutil.rmtree(prepared / "case01")
    with pytest.raises(CaseError, match=r"case01.*missing"):
        train(prepared, split, tmp_path / "m", "hybrid_transformer", TINY, SHORT, progress=False)
