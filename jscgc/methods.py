"""The method harness: one registry of the image methods that ``experiments/kodak.py`` runs.

Each method declares its encoder, channel, receiver and objective by building a system with the
three shared calls (``transmit``, ``loss``, ``receive``) on images in [0, 1]; training goes through
:func:`jscgc.train.train`, evaluation through the same sampler, SNRs, CBR and metrics for all.

=========== ================================================================================
name        what
=========== ================================================================================
jscgc       MambaJSCC encoder -> AWGN -> Z-Image backbone + CA-Adapter flow generator (latent)
mambajscc   MambaJSCC encoder -> AWGN -> the same network run once, trained with MSE on the
            decoded image (pixel space through the frozen latent decoder; see LatentSystem)
cjscc       Deep JSCC CNN encoder -> AWGN -> CNN decoder on pixels, MSE (Bourtsoulatze et al. 2019)
=========== ================================================================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn

from jscgc.cbr import symbols_per_token
from jscgc.channels import AWGN
from jscgc.decoders.cnn import CNNDecoder
from jscgc.decoders.oneshot import OneShotDecoder
from jscgc.encoders.cnn import CNNEncoder
from jscgc.encoders.mamba import MambaJSCCEncoder
from jscgc.generators.zimage import CAAdapter, ZImageVelocity, build_backbone, load_backbone
from jscgc.latent_system import LatentSystem
from jscgc.presets import Preset
from jscgc.system import JSCGC, MSEReconstruction

__all__ = ["Method", "METHODS", "build_method", "mamba_encoder", "zimage_receiver", "LatentSpec"]


@dataclass(frozen=True)
class LatentSpec:
    """What the builders need of a latent extractor: its channels and down-sampling factor
    (benchmarks and meta-device builds use this instead of loading weights)."""
    channels: int
    factor: int = 8


@dataclass(frozen=True)
class Method:
    """A named method: ``build(preset, extractor) -> system`` on images; ``stochastic``: its
    receiver samples (several samples per ŷ are meaningful)."""
    name: str
    build: Callable[[Preset, nn.Module], nn.Module]
    stochastic: bool
    description: str


METHODS: dict[str, Method] = {}


def _method(name: str, stochastic: bool, description: str):
    def deco(fn):
        METHODS[name] = Method(name, fn, stochastic, description)
        return fn
    return deco


def build_method(name: str, preset: Preset, extractor: nn.Module) -> nn.Module:
    """Build method ``name`` at ``preset`` scale (unknown names are an error listing the known)."""
    if name not in METHODS:
        raise ValueError(f"method: expected some of {sorted(METHODS)}, got {name!r}")
    return METHODS[name].build(preset, extractor)


def mamba_encoder(preset: Preset, extractor: nn.Module) -> MambaJSCCEncoder:
    """The MambaJSCC encoder whose tokens cover ``preset.token_px`` pixels, at ``preset.cbr``."""
    stages = len(preset.encoder.get("dims", (128, 256)))
    stride = preset.token_px // extractor.factor
    patch = stride // 2 ** (stages - 1)
    if preset.token_px % extractor.factor or patch < 1 or patch * 2 ** (stages - 1) != stride:
        raise ValueError(f"preset {preset.name}: {preset.token_px}-px tokens cannot be made from a "
                         f"factor-{extractor.factor} latent with {stages} encoder stages")
    return MambaJSCCEncoder(in_channels=extractor.channels, patch_size=patch,
                            symbols_per_token=symbols_per_token(preset.token_px, preset.cbr), **preset.encoder)


def zimage_receiver(preset: Preset, extractor: nn.Module, spt: int) -> ZImageVelocity:
    """Backbone (loaded from ``preset.zimage`` for "full", else random) + CA-Adapter."""
    if preset.zimage is not None:
        backbone = load_backbone(preset.zimage)
    else:
        backbone = build_backbone(**{**preset.backbone, "in_channels": extractor.channels})
    if backbone.config.in_channels != extractor.channels:
        raise ValueError(f"preset {preset.name}: backbone in_channels {backbone.config.in_channels} != "
                         f"latent channels {extractor.channels}")
    if preset.gradient_checkpointing:
        backbone.enable_gradient_checkpointing()
    adapter = CAAdapter(latent_channels=extractor.channels, backbone_dim=backbone.config.dim,
                        symbols_per_token=spt, symbol_stride=preset.token_px // extractor.factor,
                        patch_size=backbone.config.all_patch_size[0], **preset.adapter)
    return ZImageVelocity(backbone, adapter, preset.caption_tokens, preset.backbone_mode)


def _latent_shape(preset: Preset, extractor: nn.Module) -> tuple[int, int, int]:
    side = preset.crop // extractor.factor
    return (extractor.channels, side, side)


@_method("jscgc", True, "MambaJSCC encoder + Z-Image/CA-Adapter flow generator (the paper)")
def _jscgc(preset: Preset, extractor: nn.Module) -> nn.Module:
    enc = mamba_encoder(preset, extractor)
    velocity = zimage_receiver(preset, extractor, enc.config.symbols_per_token)
    inner = JSCGC(enc, AWGN(), velocity, _latent_shape(preset, extractor), preset.time_schedule)
    return LatentSystem(inner, extractor)


@_method("mambajscc", False, "MambaJSCC encoder + the same network run once, MSE in pixel space")
def _mambajscc(preset: Preset, extractor: nn.Module) -> nn.Module:
    enc = mamba_encoder(preset, extractor)
    net = zimage_receiver(preset, extractor, enc.config.symbols_per_token)
    return LatentSystem(MSEReconstruction(enc, AWGN(), OneShotDecoder(net)), extractor, pixel_loss=True)


@_method("cjscc", False, "Deep JSCC CNN encoder/decoder on pixels, MSE")
def _cjscc(preset: Preset, extractor: nn.Module) -> nn.Module:
    spt = symbols_per_token(preset.token_px, preset.cbr)
    n_down = int(math.log2(preset.token_px))
    if 2 ** n_down != preset.token_px:
        raise ValueError(f"cjscc: token_px must be a power of two, got {preset.token_px}")
    wide = preset.name != "tiny"
    hidden = (64, 128, 128, 128) if wide else (16, 32, 32, 32)
    return MSEReconstruction(CNNEncoder(3, spt, hidden=hidden, n_down=n_down), AWGN(),
                             CNNDecoder(3, spt, hidden=hidden[::-1], n_up=n_down))


def count_parameters(module: nn.Module, trainable: bool = False) -> int:
    """Parameters of ``module`` (only those with requires_grad when ``trainable``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def meta_parameter_counts(preset: Preset, channels: int = 16) -> dict[str, int]:
    """Build the preset's receiver and encoder on the meta device (no weights, no memory) from its
    configuration and count parameters: {"backbone", "adapter", "encoder"}."""
    spec = LatentSpec(preset.backbone.get("in_channels", channels))
    with torch.device("meta"):
        enc = mamba_encoder(preset, spec)
        velocity = zimage_receiver(replace(preset, zimage=None), spec, enc.config.symbols_per_token)
    return {"backbone": count_parameters(velocity.backbone), "adapter": count_parameters(velocity.adapter),
            "encoder": count_parameters(enc), "null_caption": velocity.null_caption.numel()}
