"""Image presets: one configuration per scale, all built by the same code (:mod:`jscgc.methods`).

* ``tiny`` — a 2-layer Z-Image backbone (dim 32) and a 1-block MambaJSCC encoder on TAEF2 latents of
  64x64 crops; trains in seconds on a CPU; used by tests and as a smoke run of ``kodak.py`` (Kodak
  downscaled 4x, 192x128, so that the default run takes minutes: TAEF2 costs ~0.75 s per encode or
  decode of a 384x256 image on the 2-core CPU, and the smoke run does ~500 of them at ÷2).
* ``small`` — the CPU benchmark scale (the recipe study's stand-in for ``default``): crops of 64x64,
  128x128 and the test grid 256x384 (:data:`CROP_SCHEDULE`), each size from a pool drawn once with its
  TAEF2 latents encoded once (2048 crops of 64x64 and the same pixels at the other sizes), a dim-96 4-layer
  backbone, a 1600-step budget per method; tested on Kodak downscaled 2x (384x256), received on the whole
  grid. Every method trains and is evaluated on this 2-core machine in one sitting. The schedule and the
  recipe (``SMALL_RECIPE``: MSE stage ½, σ = 1.0) are the choices of the validation study on BSDS500 `val`
  (docs/val_study.md, 'The crop schedule', 'σ and the MSE share on the schedule' and 'The chosen recipe's
  receiver, and σ = 1.0 with the share ½'); the Kodak run r4 (docs/kodak_small.md) used σ = 2.0, the choice
  before those re-checks.
* ``default`` — the embedded default, needing no outside weights: TAEF2 latents (32 channels), the
  MambaJSCC encoder, a from-scratch Z-Image-architecture backbone (dim 512, 8 layers, ≈ 44M
  parameters), CBR 1/384, BSDS500 256x256 crops; the recipe ``OUR_RECIPE`` over an 8000-step budget of
  batches of 64, each taken as 4 micro-batches of 16 (one batch of 64 through the TAEF2 decoder ran out
  of an H200's 139 GiB). Measured on one H200 (2026-12-04): 1.43 s per step, so about 190 min for jscgc
  (docs/performance.md), not the 20 minutes once planned.
* ``full`` — the paper's setting: the 6.15B Z-Image backbone from a local checkpoint (``--zimage``),
  the FLUX VAE from the same checkpoint, 256x256 crops, joint training with the CA-Adapter,
  multi-GPU through accelerate (``configs/accelerate_*.yaml``).

Every section is a typed dataclass; an override names fields of a section (a dict or an instance), and
an unknown name is an error that names it. Every encoder token covers ``token_px`` x ``token_px``
pixels (16: two complex symbols per token at CBR 1/384); :mod:`jscgc.cbr` checks the arithmetic.
``channel`` names the channel every method is built with (:mod:`jscgc.channel_registry`; AWGN by default).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

from jscgc.channel_registry import check_channel
from jscgc.crop_schedule import check_schedule
from jscgc.train import TrainConfig

__all__ = ["Preset", "PRESETS", "get_preset", "EncoderConfig", "BackboneConfig", "AdapterConfig",
           "RecipeConfig", "PAPER_RECIPE", "OUR_RECIPE", "SMALL_RECIPE", "ZIMAGE_6B",
           "CROP_SCHEDULE"]


@dataclass(frozen=True)
class EncoderConfig:
    """The MambaJSCC encoder: channels and blocks per stage, SSM state size, MLP ratio."""
    dims: tuple[int, ...] = (128, 256)
    depths: tuple[int, ...] = (2, 2)
    d_state: int = 16
    mlp_ratio: float = 2.0


@dataclass(frozen=True)
class BackboneConfig:
    """The Z-Image transformer's architecture (diffusers ``ZImageTransformer2DModel``); ``in_channels``
    comes from the latent extractor. ``axes_dims`` None: split each head's width over (t, h, w) RoPE axes."""
    dim: int
    n_layers: int
    n_heads: int
    cap_feat_dim: int
    n_refiner_layers: int = 1
    patch_size: int = 2
    axes_dims: tuple[int, int, int] | None = None
    axes_lens: tuple[int, int, int] = (64, 256, 256)
    rope_theta: float = 256.0
    norm_eps: float = 1e-5

    def diffusers_config(self, in_channels: int) -> dict[str, Any]:
        """The keyword arguments of ``ZImageTransformer2DModel``."""
        head = self.dim // self.n_heads
        axes = self.axes_dims or (head - 2 * (3 * head // 8), 3 * head // 8, 3 * head // 8)
        return dict(all_patch_size=(self.patch_size,), all_f_patch_size=(1,), in_channels=in_channels,
                    dim=self.dim, n_layers=self.n_layers, n_refiner_layers=self.n_refiner_layers,
                    n_heads=self.n_heads, n_kv_heads=self.n_heads, norm_eps=self.norm_eps, qk_norm=True,
                    cap_feat_dim=self.cap_feat_dim, rope_theta=self.rope_theta, t_scale=1000.0,
                    axes_dims=list(axes), axes_lens=list(self.axes_lens))


ZIMAGE_6B = BackboneConfig(dim=3840, n_layers=30, n_heads=30, cap_feat_dim=2560, n_refiner_layers=2,
                           axes_dims=(32, 48, 48), axes_lens=(1536, 512, 512))
"""The published Z-Image (6.15B) transformer (Tongyi-MAI/Z-Image, transformer/config.json)."""


@dataclass(frozen=True)
class AdapterConfig:
    """The CA-Adapter: the backbone layers its features are added into, and its width."""
    layers: tuple[int, ...] = (0, 1)
    hidden: int = 256


@dataclass(frozen=True)
class RecipeConfig:
    """How the generator of ``jscgc`` trains and samples (:class:`jscgc.system.JSCGC`, LatentSystem).

    prior, prior_noise, mse_share, cond_dropout, guidance: JSCGC's options (see its docstring).
    mse_loss: "latent" or "pixel" — where the MSE stage measures μ(ŷ)'s error (LatentSystem pixel_loss).
    anchor_lowpass: 0, or the factor f of the coarse band of μ(ŷ) put back into the output.
    rope_offset: the generator's training positions offset by up to this many backbone patches per axis
        (:class:`jscgc.generators.zimage.ZImageVelocity`); 0: none.
    window: receive in overlapping windows of this many encoder tokens, fused at every Euler step (JSCGC's
        ``window``; 0: the whole grid). Receive-only, so it is left out of the training record.
    """
    prior: str = "gaussian"
    prior_noise: float = 0.1
    mse_share: float = 0.0
    mse_loss: str = "latent"
    anchor_lowpass: int = 0
    cond_dropout: float = 0.0
    guidance: float = 1.0
    rope_offset: int = 0
    window: int = 0

    def __post_init__(self):
        if self.mse_loss not in ("latent", "pixel"):
            raise ValueError(f"recipe.mse_loss: expected 'latent' or 'pixel', got {self.mse_loss!r}")

    def jscgc_kwargs(self) -> dict[str, Any]:
        """The arguments of :class:`jscgc.system.JSCGC`."""
        return dict(prior=self.prior, prior_noise=self.prior_noise, mse_share=self.mse_share,
                    cond_dropout=self.cond_dropout, guidance=self.guidance, window=self.window)


PAPER_RECIPE = RecipeConfig()
"""The paper as written: Gaussian start, Eq. 10 end to end with the encoder trained throughout, Eq. 14."""

OUR_RECIPE = RecipeConfig(prior="posterior_mean", prior_noise=0.3, mse_share=0.25, mse_loss="pixel",
                          anchor_lowpass=8)
"""The from-scratch generator's recipe (docs/recipe_search.md): a pixel-MSE stage for the receiver network
(a quarter of the budget), the flow from its frozen estimate plus σ = 0.3 noise, the ÷8 band of the
estimate in the output. ``full`` keeps the paper's recipe (a second 6B copy would not fit)."""

SMALL_RECIPE = replace(OUR_RECIPE, prior_noise=1.0, mse_share=0.5)
"""The ``small`` preset's recipe, chosen on BSDS500 `val` (docs/val_study.md, 'The chosen recipe's receiver,
and σ = 1.0 with the share ½'): ``OUR_RECIPE`` with a pixel-MSE stage of half the budget and the flow from
μ(ŷ) + 1.0 ε (val variant ``ours-crops-s10-mse-half``; it replaced σ = 2.0, ``ours-crops-s20-mse-half``,
after two seeds on val)."""

CROP_SCHEDULE = ((64, 64, 0.5), (128, 128, 0.25), (256, 384, 0.25))
"""The ``small`` preset's training crops (:mod:`jscgc.crop_schedule`): half the steps on 64x64 crops (batch
16), a quarter on 128x128 (batch 4) and a quarter on the test grid 256x384 (batch 1)."""

#: (section, field) recorded only when set (Preset.to_dict); section None: a field of the preset itself
_RECORDED_WHEN_SET = (("recipe", "rope_offset"), ("recipe", "window"), (None, "crop_schedule"))
#: (section, field) that change only how a trained system receives: not part of what its checkpoints were
#: trained with (Preset.training_dict)
_RECEIVE_ONLY = (("recipe", "window"),)

_SECTIONS = {"encoder": EncoderConfig, "backbone": BackboneConfig, "adapter": AdapterConfig,
             "recipe": RecipeConfig, "train": TrainConfig}


@dataclass(frozen=True)
class Preset:
    """Everything that differs between scales; each section is typed (see the classes above)."""
    name: str
    latents: str                        # "taef2" | "flux" | "identity"
    crop: int                           # training crop (pixels)
    encoder: EncoderConfig
    backbone: BackboneConfig
    adapter: AdapterConfig
    recipe: RecipeConfig = PAPER_RECIPE
    train: TrainConfig = field(default_factory=TrainConfig)
    cbr: str = "1/384"
    token_px: int = 16                  # pixels per encoder-token side
    caption_tokens: int = 32
    backbone_mode: str = "full"         # "frozen" | "full" | "lora" (a from-scratch backbone must train)
    time_schedule: str = "logit_normal"
    zimage: str | None = None           # Z-Image checkpoint folder or hub id ("full")
    gradient_checkpointing: bool = False
    latent_pool: int = 0                # > 0: train on a pool of that many crops drawn once, latents encoded once
    crop_schedule: tuple = ()           # ((h, w, share), ...): crops of several sizes (jscgc.crop_schedule)
    test_downscale: int = 1             # kodak.py's default box-downscale of the test images
    est_seconds_per_step_cpu: float = 1.0   # for the CPU time estimate of kodak.py
    channel: str = "awgn"               # a name of jscgc.channel_registry (NAME or NAME:VALUE)

    def __post_init__(self):
        try:
            check_channel(self.channel)
        except ValueError as err:
            raise ValueError(f"preset {self.name}: {err}") from None
        try:
            check_schedule(self.crop_schedule, self.token_px)
        except ValueError as err:
            raise ValueError(f"preset {self.name}: {err}") from None
        object.__setattr__(self, "crop_schedule", tuple(tuple(e) for e in self.crop_schedule))

    def updated(self, **overrides) -> "Preset":
        """This preset with fields replaced. A section takes an instance or a dict of its fields (merged
        into the preset's); an unknown field, of the preset or of a section, is an error naming it."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"preset {self.name}: unknown setting(s) {unknown}; expected some of {sorted(known)}")
        return replace(self, **{k: self._section(k, v) if k in _SECTIONS else v for k, v in overrides.items()})

    def _section(self, name: str, value):
        cls = _SECTIONS[name]
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"preset {self.name}: {name} expects a {cls.__name__} or a dict, got {value!r}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"preset {self.name}: {name} has no setting(s) {unknown}; expected some of {sorted(names)}")
        return replace(getattr(self, name), **value)

    @property
    def latent_channels(self) -> int:
        """Channels of this preset's latents (TAEF2 32, the Z-Image FLUX VAE 16, identity 3), for builds
        that load no extractor (meta-device counts, benchmarks)."""
        return {"taef2": 32, "flux": 16, "identity": 3}[self.latents]

    def to_dict(self) -> dict[str, Any]:
        """Every setting, as run records store it. A setting added after records were first written
        (:data:`_RECORDED_WHEN_SET`) appears only when it differs from its default, so older records match."""
        out = {f.name: asdict(v) if is_dataclass(v) else v for f in fields(self) for v in [getattr(self, f.name)]}
        for section, name in _RECORDED_WHEN_SET:
            where, default = (out, ()) if section is None else (out[section], getattr(_SECTIONS[section](), name))
            if where[name] == default:
                del where[name]
        return out

    def training_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the receive-only settings (:data:`_RECEIVE_ONLY`): what a run record
        compares, so a checkpoint trained once is received at any window."""
        out = self.to_dict()
        for section, name in _RECEIVE_ONLY:
            out[section].pop(name, None)
        return out


def _small_backbone(dim: int, layers: int, heads: int, cap: int, refiner: int = 1) -> BackboneConfig:
    return BackboneConfig(dim=dim, n_layers=layers, n_heads=heads, cap_feat_dim=cap, n_refiner_layers=refiner)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("tiny", latents="taef2", crop=64,
           encoder=EncoderConfig(dims=(16, 16), depths=(1, 1), d_state=4, mlp_ratio=1.0),
           backbone=_small_backbone(32, 2, 2, 16), adapter=AdapterConfig(layers=(0, 1), hidden=32),
           caption_tokens=8, recipe=replace(OUR_RECIPE, mse_share=0.25),
           train=TrainConfig(steps=80, batch_size=8, lr=1e-3, snr_db=[-5.0, 10.0], warmup=5, checkpoint_every=20),
           test_downscale=4, est_seconds_per_step_cpu=0.15),
    Preset("small", latents="taef2", crop=64,
           encoder=EncoderConfig(dims=(32, 32), depths=(1, 1), d_state=8, mlp_ratio=1.0),
           backbone=_small_backbone(96, 4, 3, 32), adapter=AdapterConfig(layers=(0, 2), hidden=64),
           caption_tokens=8, recipe=SMALL_RECIPE, latent_pool=2048, crop_schedule=CROP_SCHEDULE, test_downscale=2,
           train=TrainConfig(steps=1600, batch_size=16, lr=1e-3, lr_schedule="cosine", warmup=50,
                             snr_db=[-5.0, 10.0], checkpoint_every=200),
           est_seconds_per_step_cpu=0.25),
    Preset("default", latents="taef2", crop=256,
           encoder=EncoderConfig(dims=(128, 256), depths=(2, 2), d_state=16, mlp_ratio=2.0),
           backbone=_small_backbone(512, 8, 8, 256, refiner=2), adapter=AdapterConfig(layers=(0, 2, 4, 6), hidden=256),
           recipe=OUR_RECIPE,
           train=TrainConfig(steps=8000, batch_size=64, accumulation=4, lr=2e-4, lr_schedule="cosine", warmup=200,
                             snr_db=[-5.0, 10.0], grad_clip=1.0, mixed_precision="bf16", checkpoint_every=1000),
           est_seconds_per_step_cpu=60.0),
    Preset("full", latents="flux", crop=256,
           encoder=EncoderConfig(dims=(256, 512), depths=(2, 4), d_state=16, mlp_ratio=2.0),
           backbone=ZIMAGE_6B, adapter=AdapterConfig(layers=(0, 5, 10, 15, 20, 25), hidden=1024),
           train=TrainConfig(steps=20000, batch_size=8, lr=1e-4, lr_schedule="cosine", warmup=500,
                             snr_db=[-5.0, 10.0], grad_clip=1.0, mixed_precision="bf16", checkpoint_every=1000),
           zimage="Tongyi-MAI/Z-Image", gradient_checkpointing=True, est_seconds_per_step_cpu=3600.0),
]}


def get_preset(name: str, **overrides) -> Preset:
    """The named preset with fields replaced by ``overrides`` (see :meth:`Preset.updated`)."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name].updated(**overrides)
