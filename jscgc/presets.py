"""Image presets: one configuration per scale, all built by the same code (:mod:`jscgc.methods`).

* ``tiny`` — a 2-layer Z-Image backbone (dim 32) and a 1-block MambaJSCC encoder on TAEF2 latents of
  64x64 crops; trains in seconds on a CPU; used by tests and as a smoke run of ``kodak.py``.
* ``default`` — the embedded default, needing no outside weights: TAEF2 latents (32 channels), the
  MambaJSCC encoder, a from-scratch Z-Image-architecture backbone (dim 512, 8 layers, ≈ 40M
  parameters), CBR 1/384, BSDS500 256x256 crops; the recipe ``_RECIPE`` (2000 warm-up + 6000 flow
  steps, planned for about 20 minutes on one H200 from the calibration probes' step rates; unmeasured).
* ``full`` — the paper's setting: the 6.15B Z-Image backbone from a local checkpoint (``--zimage``),
  the FLUX VAE from the same checkpoint, 256x256 crops, joint training with the CA-Adapter,
  multi-GPU through accelerate (``configs/accelerate_*.yaml``).

Every encoder token covers ``token_px`` x ``token_px`` pixels (16: two complex symbols per token at
CBR 1/384); :mod:`jscgc.cbr` checks the arithmetic.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from jscgc.generators.zimage import ZIMAGE_6B_CONFIG

__all__ = ["Preset", "PRESETS", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """Everything that differs between scales. Fields map to constructor arguments of the parts."""
    name: str
    latents: str                        # "taef2" | "flux" | "identity"
    crop: int                           # training crop (pixels)
    cbr: str = "1/384"
    token_px: int = 16                  # pixels per encoder-token side
    encoder: dict[str, Any] = field(default_factory=dict)    # MambaJSCCEncoder kwargs (dims, depths, ...)
    backbone: dict[str, Any] = field(default_factory=dict)   # ZImageTransformer2DModel config
    adapter: dict[str, Any] = field(default_factory=dict)    # CAAdapter kwargs (layers, hidden)
    caption_tokens: int = 32
    backbone_mode: str = "full"         # "frozen" | "full" | "lora" (a from-scratch backbone must train)
    time_schedule: str = "logit_normal"
    flow: dict[str, Any] = field(default_factory=dict)       # JSCGC recipe options (cond_dropout, guidance, prior,
    #                                                          prior_noise, warmup_steps), warmup_loss (latent|pixel), anchor_lowpass
    train: dict[str, Any] = field(default_factory=dict)      # TrainConfig kwargs
    zimage: str | None = None           # Z-Image checkpoint folder or hub id ("full")
    gradient_checkpointing: bool = False
    est_seconds_per_step_cpu: float = 1.0   # for the CPU time warning of kodak.py

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _zimage(dim: int, layers: int, heads: int, channels: int, cap: int, refiner: int = 1) -> dict:
    head = dim // heads
    axes = [head - 2 * (3 * head // 8), 3 * head // 8, 3 * head // 8]
    return dict(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=channels, dim=dim, n_layers=layers,
                n_refiner_layers=refiner, n_heads=heads, n_kv_heads=heads, norm_eps=1e-5, qk_norm=True,
                cap_feat_dim=cap, rope_theta=256.0, t_scale=1000.0, axes_dims=axes, axes_lens=[64, 256, 256])


_RECIPE = dict(prior="posterior_mean", prior_noise=0.3, warmup_loss="pixel", anchor_lowpass=8)
"""The from-scratch generator's recipe (issue 9, docs/recipe_search.md): a pixel-MSE warm-up of the receiver
network, the flow from its frozen estimate plus σ = 0.3 noise, the ÷8 band of the estimate at sampling.
``full`` keeps the paper's plain recipe (a pretrained backbone; a second 6B copy would not fit)."""

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("tiny", latents="taef2", crop=64,
           encoder=dict(dims=(16, 16), depths=(1, 1), d_state=4, mlp_ratio=1.0),
           backbone=_zimage(32, 2, 2, 32, 16), adapter=dict(layers=(0, 1), hidden=32),
           caption_tokens=8, flow=dict(_RECIPE, warmup_steps=20),
           train=dict(steps=60, batch_size=8, lr=1e-3, snr_db=[-5.0, 10.0], warmup=5, checkpoint_every=0),
           est_seconds_per_step_cpu=0.15),
    Preset("default", latents="taef2", crop=256,
           encoder=dict(dims=(128, 256), depths=(2, 2), d_state=16, mlp_ratio=2.0),
           backbone=_zimage(512, 8, 8, 32, 256, refiner=2), adapter=dict(layers=(0, 2, 4, 6), hidden=256),
           flow=dict(_RECIPE, warmup_steps=2000),
           train=dict(steps=6000, batch_size=64, lr=2e-4, lr_schedule="cosine", warmup=200,
                      snr_db=[-5.0, 10.0], grad_clip=1.0, mixed_precision="bf16", checkpoint_every=1000),
           est_seconds_per_step_cpu=60.0),
    Preset("full", latents="flux", crop=256,
           encoder=dict(dims=(256, 512), depths=(2, 4), d_state=16, mlp_ratio=2.0),
           backbone=dict(ZIMAGE_6B_CONFIG), adapter=dict(layers=(0, 5, 10, 15, 20, 25), hidden=1024),
           train=dict(steps=20000, batch_size=8, lr=1e-4, lr_schedule="cosine", warmup=500,
                      snr_db=[-5.0, 10.0], grad_clip=1.0, mixed_precision="bf16", checkpoint_every=1000),
           zimage="Tongyi-MAI/Z-Image", gradient_checkpointing=True, est_seconds_per_step_cpu=3600.0),
]}


def get_preset(name: str, **overrides) -> Preset:
    """The named preset with fields replaced by ``overrides`` (unknown names are an error)."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return replace(PRESETS[name], **overrides)
