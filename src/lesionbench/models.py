"""Model registry: the four segmentation families compared by the study, built with segmentation-models-pytorch.

Config names are stable (``models:`` in config/config.yaml); each entry gives the smp architecture, the
encoder and the widths. Every family outputs one logit channel (``classes=1``); ``in_channels`` follows the
data set (3 for RGB fundus images, 1 for MRI/CT). No pretrained weights by default (``encoder_weights:
null``); ``imagenet`` downloads them once.

| family               | what defines it                         | default build                               |
| -------------------- | --------------------------------------- | ------------------------------------------- |
| `unet`               | plain (non-residual) convolutional encoder | smp.Unet, encoder vgg11_bn (laptop: MobileNetV1) |
| `resunet`            | residual encoder                        | smp.Unet, encoder resnet18                  |
| `attention_unet`     | attention gates in the decoder          | smp.Unet, resnet18, decoder attention scse  |
| `hybrid_transformer` | transformer encoder, CNN (U-Net) decoder | smp.Unet, encoder mit_b0 (SegFormer MiT-B0) |

Constraints checked here, with an error naming the model (smp 0.6):
- ``decoder_channels`` needs one width per encoder stage (``len == encoder_depth``), depth 3..5;
- inputs must be divisible by the encoder's output stride ``min(32, 2**encoder_depth)``
  (:func:`input_divisor`); training sizes are checked up front by :func:`check_input_size`;
- Mix Transformer encoders (``mit_*``): smp 0.6 builds them for any ``in_channels`` (the first patch
  embedding is re-created for 1 channel; with ImageNet weights its kernels are summed over RGB) and for
  depths 3..5; the ``hybrid_transformer`` family requires depth 5 so all four transformer stages are used
  (inputs divisible by 32).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a model is built: the config check runs on every Snakemake call
    import torch

FAMILIES: dict[str, str] = {
    "unet": "U-Net with a plain (non-residual) convolutional encoder",
    "resunet": "U-Net with a residual (ResNet) encoder",
    "attention_unet": "U-Net with spatial and channel attention (scSE) in every decoder block",
    "hybrid_transformer": "Mix Transformer (SegFormer) encoder with a convolutional U-Net decoder",
}

MODEL_KEYS = ("arch", "encoder", "encoder_depth", "decoder_channels", "decoder_attention_type")
# Plain encoders: conv stacks without shortcuts. VGG (the study's); MobileNetV1 (timm ``tu-mobilenetv1_*``), the
# same design with depthwise-separable convolutions, about a third of the cost (the laptop default).
PLAIN_ENCODER_PREFIXES = ("vgg", "mobilenetv1")
RESIDUAL_ENCODER_MARKERS = ("resnet", "resnext", "res2net", "resnest", "regnet")


# Encoder names segmentation-models-pytorch 0.6 registers (``smp.encoders.encoders``; tests/test_config_check.py
# checks this list against the installed smp). Listed here so the config can be checked without importing
# torch; ``tu-<name>`` encoders come from timm and are looked up there.
_SMP_ENCODER_NAMES = """
densenet121 densenet161 densenet169 densenet201 dpn107 dpn131 dpn68 dpn68b dpn92 dpn98
efficientnet-b0 efficientnet-b1 efficientnet-b2 efficientnet-b3 efficientnet-b4 efficientnet-b5 efficientnet-b6
efficientnet-b7 inceptionresnetv2 inceptionv4 mit_b0 mit_b1 mit_b2 mit_b3 mit_b4 mit_b5 mobilenet_v2
mobileone_s0 mobileone_s1 mobileone_s2 mobileone_s3 mobileone_s4 resnet101 resnet152 resnet18 resnet34 resnet50
resnext101_32x16d resnext101_32x32d resnext101_32x48d resnext101_32x4d resnext101_32x8d resnext50_32x4d
se_resnet101 se_resnet152 se_resnet50 se_resnext101_32x4d se_resnext50_32x4d senet154
timm-efficientnet-b0 timm-efficientnet-b1 timm-efficientnet-b2 timm-efficientnet-b3 timm-efficientnet-b4
timm-efficientnet-b5 timm-efficientnet-b6 timm-efficientnet-b7 timm-efficientnet-b8 timm-efficientnet-l2
timm-skresnet18 timm-skresnet34 timm-skresnext50_32x4d timm-tf_efficientnet_lite0 timm-tf_efficientnet_lite1
timm-tf_efficientnet_lite2 timm-tf_efficientnet_lite3 timm-tf_efficientnet_lite4
vgg11 vgg11_bn vgg13 vgg13_bn vgg16 vgg16_bn vgg19 vgg19_bn xception
"""
SMP_ENCODERS = frozenset(_SMP_ENCODER_NAMES.split())
# Architectures smp.create_model knows (``smp.MODEL_ARCHITECTURES_MAPPING``, matched case-insensitively).
_SMP_ARCHITECTURE_NAMES = "deeplabv3 deeplabv3plus dpt fpn linknet manet pan pspnet segformer unet unetplusplus upernet"
SMP_ARCHITECTURES = frozenset(_SMP_ARCHITECTURE_NAMES.split())


class ModelConfigError(ValueError):
    """A model entry of the config cannot be built as the family it names."""


def _resolved(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cfg) - set(MODEL_KEYS))
    if unknown:
        raise ModelConfigError(f"model {name!r}: unknown keys {unknown} (allowed: {list(MODEL_KEYS)})")
    if "encoder" not in cfg:
        raise ModelConfigError(f"model {name!r}: 'encoder' is required")
    out = {
        "arch": cfg.get("arch", "Unet"),
        "encoder": str(cfg["encoder"]),
        "encoder_depth": int(cfg.get("encoder_depth", 5)),
        "decoder_attention_type": cfg.get("decoder_attention_type"),
    }
    default_widths = [256, 128, 64, 32, 16][max(0, 5 - out["encoder_depth"]) :]  # smp's default, per depth
    out["decoder_channels"] = [int(w) for w in cfg.get("decoder_channels") or default_widths]
    return out


def check_model_config(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Validate a ``models:`` entry against its family; return it with defaults filled in."""
    if name not in FAMILIES:
        raise ModelConfigError(f"model {name!r}: unknown family (known: {sorted(FAMILIES)})")
    c = _resolved(name, cfg)
    depth, enc = c["encoder_depth"], c["encoder"].lower()
    if not 3 <= depth <= 5:
        raise ModelConfigError(f"model {name!r}: encoder_depth must be 3, 4 or 5, got {depth}")
    if len(c["decoder_channels"]) != depth:
        raise ModelConfigError(
            f"model {name!r}: decoder_channels {c['decoder_channels']} needs one width per "
            f"encoder stage (encoder_depth={depth})"
        )
    if any(w < 1 for w in c["decoder_channels"]):
        raise ModelConfigError(f"model {name!r}: decoder_channels must be positive, got {c['decoder_channels']}")
    bare = enc[3:] if enc.startswith("tu-") else enc
    _check_encoder_name(name, c["encoder"])
    if c["arch"].lower() not in SMP_ARCHITECTURES:
        raise ModelConfigError(
            f"model {name!r}: arch {c['arch']!r} is not a segmentation-models-pytorch "
            f"architecture (known: {sorted(SMP_ARCHITECTURES)}; the families use Unet)"
        )
    if name == "unet" and not bare.startswith(PLAIN_ENCODER_PREFIXES):
        raise ModelConfigError(
            f"model 'unet': encoder {c['encoder']!r} is not a plain (non-residual) encoder; "
            f"use a VGG encoder such as vgg11_bn, or tu-mobilenetv1_100"
        )
    if name == "resunet" and not any(m in bare for m in RESIDUAL_ENCODER_MARKERS):
        raise ModelConfigError(
            f"model 'resunet': encoder {c['encoder']!r} is not a residual encoder; use e.g. resnet18 or resnet34"
        )
    if name == "attention_unet" and not c["decoder_attention_type"]:
        raise ModelConfigError("model 'attention_unet': decoder_attention_type must be set (e.g. scse)")
    if name == "hybrid_transformer":
        if not bare.startswith("mit_"):
            raise ModelConfigError(
                f"model 'hybrid_transformer': encoder {c['encoder']!r} is not a Mix Transformer (mit_b0 ... mit_b5)"
            )
        if depth != 5:
            raise ModelConfigError(
                f"model 'hybrid_transformer': a Mix Transformer encoder needs encoder_depth 5 "
                f"(all four transformer stages), got {depth}"
            )
    return c


def _check_encoder_name(name: str, encoder: str) -> None:
    if encoder.startswith("tu-"):
        import timm  # only for timm encoders: importing it costs a second or two

        if not timm.is_model(encoder[3:]):
            raise ModelConfigError(f"model {name!r}: encoder {encoder!r}: timm has no model {encoder[3:]!r}")
        return
    if encoder not in SMP_ENCODERS:
        import difflib

        close = difflib.get_close_matches(encoder, sorted(SMP_ENCODERS), n=3)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise ModelConfigError(
            f"model {name!r}: unknown encoder {encoder!r}{hint}; the segmentation-models-pytorch "
            f"0.6 encoders are in docs/models.md (or use tu-<timm model>)"
        )


def input_divisor(cfg: dict[str, Any]) -> int:
    """Spatial sizes fed to the model must be multiples of this (the encoder's output stride)."""
    return min(32, 2 ** int(cfg.get("encoder_depth", 5)))


def check_input_size(name: str, cfg: dict[str, Any], size: int) -> None:
    div = input_divisor(cfg)
    if int(size) % div:
        raise ModelConfigError(
            f"model {name!r}: input_size {size} must be divisible by {div} "
            f"(encoder_depth {cfg.get('encoder_depth', 5)})"
        )


def build_model(
    name: str, cfg: dict[str, Any], in_channels: int, encoder_weights: str | None = None
) -> torch.nn.Module:
    """Build family ``name`` from its config entry: a ``torch.nn.Module`` mapping
    ``(N, in_channels, H, W)`` to one logit channel ``(N, 1, H, W)``."""
    import segmentation_models_pytorch as smp
    import torch  # noqa: F401  (the module's annotations name it)

    c = check_model_config(name, cfg)
    if int(in_channels) < 1:
        raise ModelConfigError(f"model {name!r}: in_channels must be >= 1, got {in_channels}")
    kwargs = dict(
        encoder_name=c["encoder"],
        encoder_weights=encoder_weights,
        in_channels=int(in_channels),
        classes=1,
        encoder_depth=c["encoder_depth"],
        decoder_channels=list(c["decoder_channels"]),
    )
    if c["decoder_attention_type"]:
        kwargs["decoder_attention_type"] = c["decoder_attention_type"]
    try:
        return smp.create_model(c["arch"], **kwargs)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelConfigError(
            f"model {name!r}: segmentation-models-pytorch cannot build {c} ({type(exc).__name__}: {exc})"
        ) from exc
