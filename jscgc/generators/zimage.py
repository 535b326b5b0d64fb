"""The JSCGC receiver at scale: a Z-Image backbone steered by the CA-Adapter (paper Sec. III-B).

Dataflow of one velocity evaluation v(x_t, t, ŷ)::

    ŷ (B, n, 2) ─► encoder-token grid (B, 2k, H/s, W/s) ─► backbone token grid ─► linear ─┐ + SNR
    x_t (B, C, H, W) ─► 2x2 patches (B, T, 4C) ─► linear ────────────────────────────────┤
                                                                                         ▼
        adapter stage 1 ─► stage 2 ─► … ─► stage N_I   (each: h += MLP(AdaLN_t(h + x_emb)) + 3x3 conv)
              │ zero-init proj     │                      │
              ▼                    ▼                      ▼
    Z-Image:  … layer L_1 ⊕ … layer L_2 ⊕ … layer L_{N_I} ⊕ … final layer ─► −out ─► v

Features are added into the backbone's token stream after layers L_i through diffusers'
``controlnet_block_samples`` hook (no patching of diffusers). The output projections start at
zero, so an untrained adapter leaves the backbone's output unchanged. No text prompt: a learned
null caption stands in for the caption features.

Conventions (docs/design.md, 'Time and flow'): diffusers' Z-Image is fed τ = 1 − t and its pipeline integrates
−output from τ = 0 (noise) to 1, so with our t (0 = data, 1 = noise) and v = x1 − x0 the package's
velocity is v(x_t, t) = −backbone(x_t, 1 − t). :class:`ZImageVelocity` does this conversion, once.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from jscgc.generators.positions import draw_offsets, shifted_positions
from jscgc.nn import time_embedding
from jscgc.registry import register
from jscgc.types import Received

__all__ = ["CAAdapter", "ZImageVelocity", "build_backbone", "load_backbone",
           "SEQ_MULTI_OF", "symbols_to_grid"]

SEQ_MULTI_OF = 32   # diffusers pads the image and caption token sequences to multiples of 32



def symbols_to_grid(symbols: torch.Tensor, height: int, width: int, stride: int) -> torch.Tensor:
    """Lay ŷ (B, n, 2) back on the encoder's token grid: (B, 2k, height/stride, width/stride),
    k = n / grid size (the encoders emit k symbols per token, tokens row-major)."""
    b, n, _ = symbols.shape
    h, w = height // stride, width // stride
    if height % stride or width % stride or n % (h * w):
        raise ValueError(f"received symbols: {n} symbols do not fill the {h}x{w} encoder grid of a "
                         f"{height}x{width} latent (stride {stride})")
    return symbols.reshape(b, h, w, -1).permute(0, 3, 1, 2)


class _Stage(nn.Module):
    """One adapter stage on the token grid: h + MLP(AdaLN_t(h + x)) + depthwise 3x3 conv (local context)."""

    def __init__(self, hidden: int, time_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.mod = nn.Linear(time_dim, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))
        self.conv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)

    def forward(self, h, x_emb, temb, grid):
        scale, shift = self.mod(temb)[:, None].chunk(2, dim=-1)
        h = h + self.mlp(self.norm(h + x_emb) * (1 + scale) + shift)
        b, t, c = h.shape
        spatial = h.transpose(1, 2).reshape(b, c, *grid)
        return h + self.conv(spatial).flatten(2).transpose(1, 2)


@register
class CAAdapter(ModelMixin, ConfigMixin):
    """Communication-aware adapter: (x_t, t, ŷ) -> one (B, T, backbone_dim) tensor per injected layer.

    T = (H/p)(W/p) image tokens of a (B, C, H, W) latent with backbone patch size p.

    Args:
        latent_channels: C. backbone_dim: the backbone's token width.
        symbols_per_token: k complex symbols per encoder token.
        symbol_stride: latent positions per encoder-token side (the encoder's stride on the latent);
            a multiple or a divisor of ``patch_size``.
        layers: backbone layer indices L_1..L_{N_I} after which stage i's features are added.
        hidden: adapter width. patch_size: the backbone's patch size p. time_dim: time embedding size.
    """

    @register_to_config
    def __init__(self, latent_channels: int, backbone_dim: int, symbols_per_token: int,
                 symbol_stride: int, layers: tuple[int, ...] = (0, 1), hidden: int = 256,
                 patch_size: int = 2, time_dim: int = 128):
        super().__init__()
        p, s = patch_size, symbol_stride
        if not (s % p == 0 or p % s == 0):
            raise ValueError(f"CAAdapter: symbol_stride {s} must be a multiple or divisor of patch_size {p}")
        y_dim = 2 * symbols_per_token * (p // s) ** 2 if p >= s else 2 * symbols_per_token
        self.y_in = nn.Linear(y_dim + 1, hidden)
        self.x_in = nn.Linear(p * p * latent_channels, hidden)
        self.t_in = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, time_dim))
        self.stages = nn.ModuleList(_Stage(hidden, time_dim) for _ in layers)
        self.outs = nn.ModuleList(nn.Linear(hidden, backbone_dim) for _ in layers)
        for out in self.outs:                        # zero init: the backbone starts unchanged
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, received: Received) -> list[torch.Tensor]:
        cfg = self.config
        b, c, H, W = x_t.shape
        p, s = cfg.patch_size, cfg.symbol_stride
        grid = (H // p, W // p)
        y = symbols_to_grid(received.symbols.to(x_t.dtype), H, W, s)
        if s > p:
            y = F.interpolate(y, size=grid, mode="nearest")       # one encoder token -> (s/p)² tokens
        elif s < p:
            y = F.pixel_unshuffle(y, p // s)                      # (p/s)² encoder tokens -> one
        y = y.flatten(2).transpose(1, 2)                          # (B, T, y_dim)
        snr = (received.snr_db.to(x_t.dtype) / 10.0).view(b, 1, 1).expand(b, y.shape[1], 1)
        h = self.y_in(torch.cat([y, snr], dim=-1))
        x_emb = self.x_in(F.pixel_unshuffle(x_t, p).flatten(2).transpose(1, 2))
        temb = self.t_in(time_embedding(t, cfg.time_dim).to(x_t.dtype))
        feats = []
        for stage, out in zip(self.stages, self.outs):
            h = stage(h, x_emb, temb, grid)
            feats.append(out(h))
        return feats


def build_backbone(**config) -> nn.Module:
    """A randomly initialised ``ZImageTransformer2DModel`` with the given configuration."""
    from diffusers import ZImageTransformer2DModel

    return ZImageTransformer2DModel(**config)


def load_backbone(path: str, torch_dtype: torch.dtype | None = None) -> nn.Module:
    """Z-Image transformer weights from a local checkpoint folder (its ``transformer/``) or a hub id.

    Raises one FileNotFoundError line naming the path when no weights are there."""
    from pathlib import Path

    from diffusers import ZImageTransformer2DModel

    sub = "transformer" if (not Path(path).exists() or (Path(path) / "transformer").is_dir()) else None
    try:
        return ZImageTransformer2DModel.from_pretrained(path, subfolder=sub, torch_dtype=torch_dtype)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"Z-Image backbone: no weights at {path!r}: "
                                f"{str(err).splitlines()[0]}") from None


class ZImageVelocity(nn.Module):
    """v(x_t, t, ŷ) in the package's convention from a Z-Image backbone and a CA-Adapter.

    x_t (B, C, H, W), t (B,), Received -> v (B, C, H, W), H and W multiples of the patch size.

    Args:
        backbone: a ``ZImageTransformer2DModel``.
        adapter: a :class:`CAAdapter` whose ``layers`` index ``backbone.layers``.
        caption_tokens: length of the learned null caption (a multiple of 32 avoids padding).
        backbone_mode: "frozen" (only adapter, caption and encoder train), "full", or "lora"
            (peft LoRA of rank ``lora_rank`` on the attention and feed-forward projections).
        rope_offset: in training mode, each sample's image-token positions are offset by (dy, dx), each
            uniform on 0..``rope_offset`` backbone patches (:mod:`jscgc.generators.positions`), drawn from
            ``offset_generator`` (seeded from torch's generator when built; a resumed run draws anew).
    """

    def __init__(self, backbone: nn.Module, adapter: CAAdapter, caption_tokens: int = 32,
                 backbone_mode: str = "frozen", lora_rank: int = 16, rope_offset: int = 0):
        super().__init__()
        if rope_offset < 0:
            raise ValueError(f"rope_offset: expected patches >= 0, got {rope_offset}")
        self.rope_offset = rope_offset            # > 0: training positions offset by up to this many patches
        if backbone_mode not in ("frozen", "full", "lora"):
            raise ValueError(f"backbone_mode: expected 'frozen', 'full' or 'lora', got {backbone_mode!r}")
        bad = [i for i in adapter.config.layers if not 0 <= i < len(backbone.layers)]
        if bad:
            raise ValueError(f"CAAdapter layers {bad} outside the backbone's {len(backbone.layers)} layers")
        if adapter.config.patch_size not in backbone.config.all_patch_size:
            raise ValueError(f"CAAdapter patch_size {adapter.config.patch_size} is not one of the "
                             f"backbone's {backbone.config.all_patch_size}")
        self.backbone, self.adapter, self.backbone_mode = backbone, adapter, backbone_mode
        self.null_caption = nn.Parameter(torch.randn(caption_tokens, backbone.config.cap_feat_dim))
        # drawn after every parameter, and only with offsets, so a model without them is built as before
        self.offset_generator = (torch.Generator().manual_seed(int(torch.randint(2 ** 62, ()))) if rope_offset
                                 else None)
        if backbone_mode == "frozen":
            backbone.requires_grad_(False)
        elif backbone_mode == "lora":
            try:
                from peft import LoraConfig
            except ImportError:
                raise ImportError("backbone_mode 'lora' needs peft: pip install peft") from None
            backbone.requires_grad_(False)
            backbone.add_adapter(LoraConfig(r=lora_rank, lora_alpha=lora_rank, init_lora_weights=True,
                                            target_modules=["to_q", "to_k", "to_v", "to_out.0",
                                                            "w1", "w2", "w3"]))

    @property
    def patch_size(self) -> int:
        """The backbone's patch size p on the latent (windows of a windowed reception are whole patches)."""
        return self.adapter.config.patch_size

    def injections(self, x_t: torch.Tensor, t: torch.Tensor, received: Received) -> dict[int, torch.Tensor]:
        """The adapter's features padded to the backbone's unified sequence: {layer: (B, L, dim)}."""
        H, W = x_t.shape[-2:]
        p = self.adapter.config.patch_size
        n_img = (H // p) * (W // p)
        img_len = n_img + (-n_img) % SEQ_MULTI_OF
        cap = self.null_caption.shape[0]
        total = img_len + cap + (-cap) % SEQ_MULTI_OF
        out = {}
        for layer, f in zip(self.adapter.config.layers, self.adapter(x_t, t, received)):
            out[layer] = F.pad(f, (0, 0, 0, total - n_img))      # zeros on padding and caption tokens
        return out

    def backbone_velocity(self, x_t: torch.Tensor, t: torch.Tensor,
                          injections: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        """The convention conversion, in one place: v(x_t, t) = −backbone(x_t, τ = 1 − t).

        τ goes in as float32 whatever the backbone's dtype, as diffusers' Z-Image pipeline passes it.
        diffusers computes ``t_embedder(τ · t_scale)`` in τ's dtype and the sinusoids of that value in
        float32 (``TimestepEmbedder.timestep_embedding``), so 1000·(1 − t) and its cos/sin are computed
        in float32; only the 256 cos/sin features are then rounded to the embedder MLP's dtype (relative error
        ≤ 2⁻⁹ in bf16), inside diffusers, as for the published model. (τ cast to bf16 was off by up to 2
        in 1000·τ, and every t < 0.002 became τ = 1.)"""
        b = x_t.shape[0]
        dtype = next(self.backbone.parameters()).dtype
        caption = self.null_caption.to(dtype)
        tau = 1 - t.to(torch.float32)
        out = self.backbone(list(x_t.to(dtype).unsqueeze(2).unbind(0)), tau, [caption] * b,
                            controlnet_block_samples=injections, return_dict=False,
                            patch_size=self.adapter.config.patch_size)[0]
        return -torch.stack(out, dim=0).squeeze(2).to(x_t.dtype)

    def compile_blocks(self, **kwargs) -> "ZImageVelocity":
        """Regional ``torch.compile`` (in place): each repeated block of the backbone (diffusers'
        ``compile_repeated_blocks``: one compiled graph shared by the 30 layers of the 6B model) and each
        adapter stage. Compiling blocks rather than the whole model keeps the compile time to a few blocks'
        and leaves diffusers' Python preprocessing eager. ``kwargs`` go to ``torch.compile``
        (default ``fullgraph=True``). Returns self."""
        kwargs = {"fullgraph": True, **kwargs}
        self.backbone.compile_repeated_blocks(**kwargs)
        for stage in self.adapter.stages:
            stage.compile(**kwargs)
        return self

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, received: Received) -> torch.Tensor:
        inj = self.injections(x_t, t, received)
        dtype = next(self.backbone.parameters()).dtype
        inj = {k: v.to(dtype) for k, v in inj.items()}
        if not (self.training and self.rope_offset):
            return self.backbone_velocity(x_t, t, inj)
        offsets = draw_offsets(x_t.shape[0], self.rope_offset, self.offset_generator)
        grid = (x_t.shape[-2] // self.patch_size, x_t.shape[-1] // self.patch_size)
        with shifted_positions(self.backbone, offsets, grid):
            return self.backbone_velocity(x_t, t, inj)

    def config(self) -> dict[str, Any]:
        """Configs of the backbone and adapter (for ``config.json`` beside checkpoints)."""
        from jscgc.registry import config_of

        return {"backbone": {k: v for k, v in dict(self.backbone.config).items() if not k.startswith("_")},
                "adapter": config_of(self.adapter), "caption_tokens": self.null_caption.shape[0],
                "backbone_mode": self.backbone_mode}

