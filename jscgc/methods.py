"""The method harness: one registry of the methods that ``experiments/kodak.py`` and
``experiments/toy_manifold.py`` run.

Each method declares its encoder, channel, receiver and objective by building a system with the
shared calls (``transmit``, ``plan``, ``receive``), once for images in [0, 1] (``image``, at a preset's
scale) and once for the toy manifolds' vectors (``toy``, MLP parts). Training goes through
:func:`jscgc.train.train` (the one loop, running the system's plan), evaluation through the same sampler,
SNRs, CBR accounting and metrics for all. Every method sends the same number n of complex channel
uses at the same SNR per symbol (tests check it). The channel is the one named by ``Preset.channel`` /
``ToySpec.channel`` (:mod:`jscgc.channel_registry`; AWGN by default, as in the table): a symbol method
refuses a bits channel; NECST sends its bits over a bits channel, or over the binary counterpart of a
symbol channel (AWGN: the BSC matched to the SNR, as below).

=========== ================================================================================
name        what (images; on toy vectors the CNN/Mamba encoders and decoders become MLPs)
=========== ================================================================================
jscgc       MambaJSCC encoder -> AWGN -> Z-Image backbone + CA-Adapter flow generator (latent), with
            the preset's recipe (default: MSE stage, posterior-mean prior, ÷8 anchor)
jscgc-paper the same parts with the paper's recipe (not the preset's): Gaussian start, Eq. 10, one stage
mambajscc   MambaJSCC encoder -> AWGN -> the same network run once, trained with MSE on the
            decoded image (pixel space through the frozen latent decoder; see LatentSystem)
cjscc       Deep JSCC CNN encoder -> AWGN -> CNN decoder on pixels, MSE (Bourtsoulatze et al. 2019)
diffjscc    cjscc, then a flow refiner (jscgc's backbone family, sampler, steps) on the cjscc image's latent
            and the SNR; two training stages sharing the budget (after Yang et al. 2025)
necst       CNN encoder -> Bernoulli bits -> BSC matched to the SNR (Gray QPSK, p = Q(sqrt(SNR)), two
            bits per channel use) -> CNN decoder; VIMCO (Choi et al. 2019)
=========== ================================================================================
``mambajscc-latent``: ``mambajscc`` with the MSE on the latent (no decoder pass in the loss; registered last).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Callable

import torch
from torch import nn

from jscgc.baselines import NECST, DiffJSCC
from jscgc.cbr import symbols_per_token
from jscgc.channel_registry import bit_channel, check_channel, check_pairing, symbol_channel
from jscgc.decoders.cnn import CNNDecoder
from jscgc.decoders.mlp import MLPDecoder
from jscgc.decoders.oneshot import OneShotDecoder
from jscgc.encoders.cnn import CNNEncoder
from jscgc.encoders.mamba import MambaJSCCEncoder
from jscgc.encoders.mlp import MLPEncoder
from jscgc.generators.mlp import MLPVelocity
from jscgc.generators.zimage import CAAdapter, ZImageVelocity, build_backbone, load_backbone
from jscgc.latent_system import LatentSystem
from jscgc.presets import PAPER_RECIPE, Preset, RecipeConfig
from jscgc.system import JSCGC, MSEReconstruction

__all__ = ["Method", "METHODS", "ToySpec", "build_method", "build_toy", "mamba_encoder", "zimage_receiver",
           "LatentSpec"]


@dataclass(frozen=True)
class LatentSpec:
    """What the builders need of a latent extractor: its channels and down-sampling factor
    (benchmarks and meta-device builds use this instead of loading weights)."""
    channels: int
    factor: int = 8


@dataclass(frozen=True)
class ToySpec:
    """A toy source as the builders see it: data dimension m, complex channel uses n, MLP widths.
    ``power``: the encoders' power constraint (the toy uses the batch average, see docs/design.md, 'Symbols and power');
    ``channel``: a name of :mod:`jscgc.channel_registry`."""
    dim: int
    n_symbols: int
    hidden: int = 128
    encoder_hidden: int = 64
    power: str = "batch"
    channel: str = "awgn"

    def __post_init__(self):
        check_channel(self.channel)


@dataclass(frozen=True)
class Method:
    """A named method. ``image(preset, extractor) -> system`` on images; ``toy(ToySpec) -> system``
    on vectors; ``stochastic``: its receiver samples (several samples per ŷ are meaningful);
    ``binary``: it sends bits (over a bits channel, or the binary counterpart of a symbol channel);
    ``reads_recipe``: built from ``Preset.recipe``, so its run records compare the recipe (jscgc.runs)."""
    name: str
    image: Callable[[Preset, nn.Module], nn.Module]
    toy: Callable[[ToySpec], nn.Module]
    stochastic: bool
    label: str
    description: str
    binary: bool = False
    reads_recipe: bool = False


METHODS: dict[str, Method] = {}


def _method(name: str, stochastic: bool, label: str, description: str, binary=False, reads_recipe=False):
    """Register ``name`` from a class used as a namespace of two static builders, ``image`` and ``toy``."""
    def deco(ns):
        METHODS[name] = Method(name, ns.image, ns.toy, stochastic, label, description, binary, reads_recipe)
        return ns
    return deco


def _check(name: str) -> None:
    if name not in METHODS:
        raise ValueError(f"method: expected some of {sorted(METHODS)}, got {name!r}")


def build_method(name: str, preset: Preset, extractor: nn.Module) -> nn.Module:
    """Build method ``name`` on images at ``preset`` scale over ``preset.channel`` (unknown names are an error
    listing the known; a method that cannot use the channel is one error naming both)."""
    _check(name)
    check_pairing(name, METHODS[name].binary, preset.channel)
    return METHODS[name].image(preset, extractor)


def build_toy(name: str, spec: ToySpec) -> nn.Module:
    """Build method ``name`` on toy vectors (B, spec.dim) over ``spec.channel``."""
    _check(name)
    check_pairing(name, METHODS[name].binary, spec.channel)
    return METHODS[name].toy(spec)


def mamba_encoder(preset: Preset, extractor: nn.Module) -> MambaJSCCEncoder:
    """The MambaJSCC encoder whose tokens cover ``preset.token_px`` pixels, at ``preset.cbr``."""
    stages = len(preset.encoder.dims)
    stride = preset.token_px // extractor.factor
    patch = stride // 2 ** (stages - 1)
    if preset.token_px % extractor.factor or patch < 1 or patch * 2 ** (stages - 1) != stride:
        raise ValueError(f"preset {preset.name}: {preset.token_px}-px tokens cannot be made from a "
                         f"factor-{extractor.factor} latent with {stages} encoder stages")
    return MambaJSCCEncoder(in_channels=extractor.channels, patch_size=patch,
                            symbols_per_token=symbols_per_token(preset.token_px, preset.cbr),
                            **asdict(preset.encoder))


def zimage_receiver(preset: Preset, extractor: nn.Module, spt: int, stride: int | None = None,
                    rope_offset: int = 0) -> ZImageVelocity:
    """Backbone (loaded from ``preset.zimage`` for "full", else random) + CA-Adapter reading ``spt``
    symbols per condition token, one token per ``stride`` latent positions (default: the encoder's);
    ``rope_offset``: see :class:`ZImageVelocity`."""
    if preset.zimage is not None:
        backbone = load_backbone(preset.zimage)
    else:
        backbone = build_backbone(**preset.backbone.diffusers_config(extractor.channels))
    if backbone.config.in_channels != extractor.channels:
        raise ValueError(f"preset {preset.name}: backbone in_channels {backbone.config.in_channels} != "
                         f"latent channels {extractor.channels}")
    if preset.gradient_checkpointing:
        backbone.enable_gradient_checkpointing()
    stride = preset.token_px // extractor.factor if stride is None else stride
    adapter = CAAdapter(latent_channels=extractor.channels, backbone_dim=backbone.config.dim,
                        symbols_per_token=spt, symbol_stride=stride,
                        patch_size=backbone.config.all_patch_size[0], **asdict(preset.adapter))
    return ZImageVelocity(backbone, adapter, preset.caption_tokens, preset.backbone_mode, rope_offset=rope_offset)


def _latent_shape(preset: Preset, extractor: nn.Module) -> tuple[int, int, int]:
    return (extractor.channels, preset.crop // extractor.factor, preset.crop // extractor.factor)


def _cnn_parts(preset: Preset, power: str = "sample") -> tuple[CNNEncoder, CNNDecoder]:
    """The Deep JSCC CNN pair on pixels at ``preset.cbr`` (widths: the paper's at tiny, wider above)."""
    spt = symbols_per_token(preset.token_px, preset.cbr)
    n_down = int(math.log2(preset.token_px))
    if 2 ** n_down != preset.token_px:
        raise ValueError(f"cjscc: token_px must be a power of two, got {preset.token_px}")
    hidden = (64, 128, 128, 128) if preset.name != "tiny" else (16, 32, 32, 32)
    return (CNNEncoder(3, spt, hidden=hidden, n_down=n_down, power=power),
            CNNDecoder(3, spt, hidden=hidden[::-1], n_up=n_down))


def _toy_encoder(spec: ToySpec, power: str | None = None) -> MLPEncoder:
    return MLPEncoder(spec.dim, spec.n_symbols, hidden=spec.encoder_hidden, depth=2, power=power or spec.power)


def _toy_velocity(spec: ToySpec, cond_symbols: int | None = None) -> MLPVelocity:
    return MLPVelocity(spec.dim, cond_symbols or spec.n_symbols, hidden=spec.hidden, depth=3)


def _toy_decoder(spec: ToySpec) -> MLPDecoder:
    return MLPDecoder(spec.dim, spec.n_symbols, hidden=spec.hidden, depth=3)


def _jscgc_image(preset: Preset, extractor: nn.Module, recipe: RecipeConfig) -> nn.Module:
    enc = mamba_encoder(preset, extractor)
    velocity = zimage_receiver(preset, extractor, enc.config.symbols_per_token, rope_offset=recipe.rope_offset)
    inner = JSCGC(enc, symbol_channel(preset.channel), velocity, _latent_shape(preset, extractor),
                  preset.time_schedule, **recipe.jscgc_kwargs())
    return LatentSystem(inner, extractor, pixel_loss=recipe.mse_share > 0 and recipe.mse_loss == "pixel",
                        anchor_lowpass=recipe.anchor_lowpass)


@_method("jscgc", True, "JSCGC",
         "MambaJSCC encoder + Z-Image/CA-Adapter flow generator with the preset's recipe", reads_recipe=True)
class _JSCGC:
    @staticmethod
    def image(preset: Preset, extractor: nn.Module) -> nn.Module:
        return _jscgc_image(preset, extractor, preset.recipe)

    @staticmethod
    def toy(spec: ToySpec) -> nn.Module:
        return JSCGC(_toy_encoder(spec), symbol_channel(spec.channel), _toy_velocity(spec), (spec.dim,))


@_method("jscgc-paper", True, "JSCGC (paper recipe)",
         "the paper as written: Gaussian start, Eq. 10 end to end with the encoder trained throughout, Eq. 14")
class _JSCGCPaper:
    @staticmethod
    def image(preset: Preset, extractor: nn.Module) -> nn.Module:
        return _jscgc_image(preset, extractor, PAPER_RECIPE)

    toy = _JSCGC.toy


@_method("mambajscc", False, "MambaJSCC (MSE)",
         "MambaJSCC encoder + the same network run once, MSE in pixel space")
class _MambaJSCC:
    @staticmethod
    def image(preset: Preset, extractor: nn.Module, pixel_loss: bool = True) -> nn.Module:
        """The MSE decoder; ``pixel_loss``: its MSE on the decoded image (else on the latent)."""
        enc = mamba_encoder(preset, extractor)
        net = zimage_receiver(preset, extractor, enc.config.symbols_per_token)
        return LatentSystem(MSEReconstruction(enc, symbol_channel(preset.channel), OneShotDecoder(net)), extractor,
                            pixel_loss=pixel_loss)

    @staticmethod
    def toy(spec: ToySpec) -> nn.Module:
        """The generator's own MLP run once (as on images: the flow network as an MSE decoder)."""
        return MSEReconstruction(_toy_encoder(spec), symbol_channel(spec.channel), OneShotDecoder(_toy_velocity(spec)))


@_method("cjscc", False, "CJSCC (MSE)", "Deep JSCC CNN encoder/decoder on pixels, MSE")
class _CJSCC:
    @staticmethod
    def image(preset: Preset, extractor: nn.Module) -> nn.Module:
        enc, dec = _cnn_parts(preset)
        return MSEReconstruction(enc, symbol_channel(preset.channel), dec)

    @staticmethod
    def toy(spec: ToySpec) -> nn.Module:
        """An MLP encoder/decoder pair trained with MSE (Deep JSCC on vectors)."""
        return MSEReconstruction(_toy_encoder(spec), symbol_channel(spec.channel), _toy_decoder(spec))


@_method("diffjscc", True, "DiffJSCC-style (two-stage)",
         "cjscc reconstruction refined by a conditional flow on its latent; two stages")
class _DiffJSCC:
    @staticmethod
    def image(preset: Preset, extractor: nn.Module) -> nn.Module:
        enc, dec = _cnn_parts(preset)
        velocity = zimage_receiver(preset, extractor, (extractor.channels + 1) // 2, stride=1)
        stage1 = MSEReconstruction(enc, symbol_channel(preset.channel), dec)
        return DiffJSCC(stage1, velocity, extractor, preset.time_schedule)

    @staticmethod
    def toy(spec: ToySpec) -> nn.Module:
        stage1 = _CJSCC.toy(spec)
        return DiffJSCC(stage1, _toy_velocity(spec, cond_symbols=(spec.dim + 1) // 2))


@_method("necst", False, "NECST (bits, BSC)",
         "encoder -> Bernoulli bits (2 per channel use) -> BSC with Gray QPSK's p = Q(sqrt(SNR)) -> decoder, VIMCO",
         binary=True)
class _NECST:
    @staticmethod
    def image(preset: Preset, extractor: nn.Module) -> nn.Module:
        enc, dec = _cnn_parts(preset, power="none")
        return NECST(enc, bit_channel(preset.channel), dec)

    @staticmethod
    def toy(spec: ToySpec) -> nn.Module:
        return NECST(_toy_encoder(spec, power="none"), bit_channel(spec.channel), _toy_decoder(spec))


@_method("mambajscc-latent", False, "MambaJSCC (latent MSE)", "mambajscc with its MSE on the latent (no decoder pass)")
class _MambaJSCCLatent:
    image, toy = staticmethod(partial(_MambaJSCC.image, pixel_loss=False)), _MambaJSCC.toy


def count_parameters(module: nn.Module, trainable: bool = False) -> int:
    """Parameters of ``module`` (only those with requires_grad when ``trainable``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def meta_parameter_counts(preset: Preset) -> dict[str, int]:
    """Build the preset's receiver and encoder on the meta device (no weights, no memory) from its
    configuration and count parameters: {"backbone", "adapter", "encoder"}."""
    spec = LatentSpec(preset.latent_channels)
    with torch.device("meta"):
        enc = mamba_encoder(preset, spec)
        velocity = zimage_receiver(replace(preset, zimage=None), spec, enc.config.symbols_per_token)
    return {"backbone": count_parameters(velocity.backbone), "adapter": count_parameters(velocity.adapter),
            "encoder": count_parameters(enc), "null_caption": velocity.null_caption.numel()}
