"""Model registry: every configured family builds for 1- and 3-channel inputs and trains a step on CPU."""

from pathlib import Path

import pytest
import torch
import yaml

from lesionbench.models import (
    FAMILIES,
    ModelConfigError,
    build_model,
    check_input_size,
    check_model_config,
    input_divisor,
)
from lesionbench.training import resolve_training_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
torch.set_num_threads(1)


def configured_inputs():
    """(channels, input_size) of each default data set: its training size and its image channels."""
    channels = {"fundus": 3, "mri": 1, "ct": 1}
    out = set()
    for ds in CONFIG["datasets"].values():
        size = resolve_training_config(CONFIG["training"], ds.get("training"))["input_size"]
        out.add((channels[ds["synthetic"]["kind"]], size))
    return sorted(out)


def test_default_config_names_the_four_families():
    assert sorted(CONFIG["models"]) == sorted(FAMILIES)
    assert configured_inputs() == [(1, 64), (3, 64)]


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("channels,size", configured_inputs())
def test_family_forward_backward(name, channels, size):
    cfg = CONFIG["models"][name]
    check_input_size(name, cfg, size)
    torch.manual_seed(0)
    model = build_model(name, cfg, channels)
    x = torch.randn(1, channels, size, size)
    out = model(x)
    assert out.shape == (1, 1, size, size)
    out.float().mean().backward()
    # smp keeps encoder stages beyond encoder_depth (so ImageNet weights still load); they get no gradient
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert all(p.grad is not None for p in model.segmentation_head.parameters())
    # in the decoder only the skip attention of the last block (which has no skip) may stay unused
    unused = [n for n, p in model.decoder.named_parameters() if p.grad is None]
    assert all(".attention1." in n for n in unused), unused
    first_conv = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == channels
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_family_structure():
    unet = build_model("unet", CONFIG["models"]["unet"], 1)
    assert type(unet.encoder).__name__ == "TimmUniversalEncoder"  # tu-mobilenetv1_100: plain, no shortcut
    blocks = [m for m in unet.encoder.modules() if type(m).__name__ == "DepthwiseSeparableConv"]
    assert len(blocks) >= 8 and not any(b.has_skip for b in blocks)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in unet.encoder.modules())
    study = yaml.safe_load((ROOT / "config" / "full.yaml").read_text())["models"]
    assert type(build_model("unet", study["unet"], 1).encoder).__name__ == "VGGEncoder"
    res = build_model("resunet", CONFIG["models"]["resunet"], 1)
    assert type(res.encoder).__name__ == "ResNetEncoder"
    att = build_model("attention_unet", CONFIG["models"]["attention_unet"], 1)
    assert sum(type(m).__name__ == "SCSEModule" for m in att.decoder.modules()) >= 4
    assert not any(type(m).__name__ == "SCSEModule" for m in res.decoder.modules())
    hyb = build_model("hybrid_transformer", CONFIG["models"]["hybrid_transformer"], 1)
    assert type(hyb.encoder).__name__ == "MixVisionTransformerEncoder"
    assert input_divisor(CONFIG["models"]["hybrid_transformer"]) == 32
    assert input_divisor(CONFIG["models"]["unet"]) == 16


def test_same_seed_same_initial_weights():
    cfg = {"encoder": "mit_b0", "encoder_depth": 5, "decoder_channels": [16, 8, 8, 8, 8]}
    torch.manual_seed(3)
    a = build_model("hybrid_transformer", cfg, 1).state_dict()
    torch.manual_seed(3)
    b = build_model("hybrid_transformer", cfg, 1).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "name,cfg,message",
    [
        ("unet", {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 8]}, "not a plain"),
        ("unet", {"encoder": "tu-mobilenetv2_100", "encoder_depth": 3, "decoder_channels": [8, 8, 8]}, "not a plain"),
        ("resunet", {"encoder": "vgg11_bn", "encoder_depth": 3, "decoder_channels": [8, 8, 8]}, "not a residual"),
        (
            "attention_unet",
            {"encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 8]},
            "decoder_attention_type",
        ),
        (
            "hybrid_transformer",
            {"encoder": "mit_b0", "encoder_depth": 4, "decoder_channels": [8, 8, 8, 8]},
            "encoder_depth 5",
        ),
        ("hybrid_transformer", {"encoder": "resnet18", "encoder_depth": 5}, "not a Mix Transformer"),
        ("resunet", {"encoder": "resnet18", "encoder_depth": 4, "decoder_channels": [8, 8, 8]}, "one width per"),
        ("resunet", {"encoder": "resnet18", "width": 3}, "unknown keys"),
        ("transformer", {"encoder": "mit_b0"}, "unknown family"),
    ],
)
def test_config_errors_name_the_model(name, cfg, message):
    with pytest.raises(ModelConfigError, match=message):
        check_model_config(name, cfg)


def test_input_size_must_fit_the_encoder_stride():
    with pytest.raises(ModelConfigError, match="divisible by 32"):
        check_input_size("hybrid_transformer", CONFIG["models"]["hybrid_transformer"], 80)
    check_input_size("resunet", CONFIG["models"]["resunet"], 80)


def test_defaults_filled_in():
    cfg = check_model_config("resunet", {"encoder": "resnet18", "encoder_depth": 4})
    assert cfg == {
        "arch": "Unet",
        "encoder": "resnet18",
        "encoder_depth": 4,
        "decoder_channels": [128, 64, 32, 16],
        "decoder_attention_type": None,
    }
