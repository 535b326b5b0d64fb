"""MambaJSCC encoder (Wu et al., "MambaJSCC", IEEE TWC 2026; the JSCGC paper's ref. [4]).

Dataflow (latent in, complex symbols out)::

    latent (B, C, h, w) ─patch embed (p x p conv)─► tokens (B, h/p, w/p, dims[0])
      ─► stage 0: depths[0] VSS blocks ─► patch merging (2x2 -> 1, dims[i] -> dims[i+1]) ─► stage 1 ...
      ─► LayerNorm + linear head: k complex symbols per token ─► (B, n = tokens·k, 2) ─► unit power

A VSS block is x + SS2D(LN(x)) followed by x + MLP(LN(x)). SS2D (VMamba, Liu et al. 2024) unrolls the
token grid along four routes (row-major, column-major and both reversed), runs one selective scan
(:mod:`jscgc.scan`) per route with its own Δ, B, C projections, and sums the routes back on the grid.

Not included: MambaJSCC's CSI-ReST (channel-state embedding into the scan). Our encoders are
``forward(x) -> symbols`` without the SNR; SNR-adaptivity lives in the receiver.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from jscgc.channels import power_normalize
from jscgc.registry import register
from jscgc.scan import selective_scan

__all__ = ["SS2D", "VSSBlock", "PatchMerging", "MambaJSCCEncoder"]


class SS2D(nn.Module):
    """2-D selective scan over a token grid: x (B, H, W, dim) -> (B, H, W, dim).

    Args:
        dim: token width. d_state: SSM state size N. expand: inner width = expand · dim.
        d_conv: depthwise convolution size before the scan. scan_backend: see ``selective_scan``.
    """

    K = 4  # routes: row-major, column-major, and both reversed

    def __init__(self, dim: int, d_state: int = 16, expand: int = 2, d_conv: int = 3,
                 scan_backend: str = "auto"):
        super().__init__()
        d = expand * dim
        self.d_inner, self.d_state, self.scan_backend = d, d_state, scan_backend
        self.dt_rank = math.ceil(dim / 16)
        self.in_proj = nn.Linear(dim, 2 * d, bias=False)
        self.conv = nn.Conv2d(d, d, d_conv, padding=d_conv // 2, groups=d)
        self.x_proj = nn.Parameter(torch.randn(self.K, self.dt_rank + 2 * d_state, d) / math.sqrt(d))
        self.dt_proj = nn.Parameter(torch.randn(self.K, d, self.dt_rank) / math.sqrt(self.dt_rank))
        # Mamba's Δ initialisation: softplus(bias) log-uniform in [1e-3, 1e-1]
        dt = torch.exp(torch.rand(self.K * d) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32))
                                  .repeat(self.K * d, 1))
        self.D = nn.Parameter(torch.ones(self.K * d))
        self.out_norm = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        x, z = self.in_proj(x).chunk(2, dim=-1)
        x = F.silu(self.conv(x.permute(0, 3, 1, 2)))                    # (B, d, H, W)
        rows, cols = x.flatten(2), x.transpose(2, 3).flatten(2)         # (B, d, L)
        xs = torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], 1)  # (B, K, d, L)
        proj = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj)
        dts, Bs, Cs = proj.split([self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_proj)
        length = h * w
        y = selective_scan(xs.reshape(b, -1, length), dts.reshape(b, -1, length),
                           -torch.exp(self.A_log.float()), Bs, Cs, self.D.float(), self.dt_bias.float(),
                           delta_softplus=True, backend=self.scan_backend).view(b, self.K, -1, length)
        y_rows = y[:, 0] + y[:, 2].flip(-1)
        y_cols = (y[:, 1] + y[:, 3].flip(-1)).view(b, -1, w, h).transpose(2, 3).flatten(2)
        y = (y_rows + y_cols).transpose(1, 2).view(b, h, w, -1)
        return self.out_proj(self.out_norm(y) * F.silu(z))


class VSSBlock(nn.Module):
    """x + SS2D(LN(x)), then x + MLP(LN(x)) (MLP omitted when mlp_ratio is 0). (B, H, W, dim)."""

    def __init__(self, dim: int, d_state: int = 16, mlp_ratio: float = 2.0, scan_backend: str = "auto"):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.ss2d = SS2D(dim, d_state, scan_backend=scan_backend)
        hidden = int(dim * mlp_ratio)
        self.mlp = (nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(),
                                  nn.Linear(hidden, dim)) if hidden else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ss2d(self.norm(x))
        return x + self.mlp(x) if self.mlp is not None else x


class PatchMerging(nn.Module):
    """Swin-style 2x2 merge: (B, H, W, c_in) -> (B, H/2, W/2, c_out)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * c_in)
        self.proj = nn.Linear(4 * c_in, c_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)
        return self.proj(self.norm(x))


@register
class MambaJSCCEncoder(ModelMixin, ConfigMixin):
    """latent (B, in_channels, h, w) -> symbols (B, n, 2), n = (h/s)(w/s) · symbols_per_token.

    s = ``patch_size · 2^(len(dims) − 1)`` latent positions per token side (:attr:`stride`); use
    :func:`jscgc.cbr.symbols_per_token` with the stride in pixels to meet a CBR exactly.

    Args:
        in_channels: latent channels (32 for TAEF2, 16 for the FLUX VAE, 3 for pixels).
        symbols_per_token: complex symbols each output token carries.
        patch_size: patch embedding size on the latent.
        dims, depths: width and number of VSS blocks per stage.
        d_state: SSM state size. mlp_ratio: VSS block MLP width ratio.
        power: power constraint (see ``power_normalize``).
        scan_backend: "auto" (mamba-ssm on CUDA when importable), "torch" or "mamba_ssm".
    """

    @register_to_config
    def __init__(self, in_channels: int, symbols_per_token: int, patch_size: int = 2,
                 dims: tuple[int, ...] = (128, 256), depths: tuple[int, ...] = (2, 2), d_state: int = 16,
                 mlp_ratio: float = 2.0, power: str = "sample", scan_backend: str = "auto"):
        super().__init__()
        if len(dims) != len(depths) or not dims:
            raise ValueError(f"MambaJSCCEncoder: dims and depths must have the same non-zero length, "
                             f"got {dims} and {depths}")
        self.patch = nn.Conv2d(in_channels, dims[0], patch_size, stride=patch_size)
        self.patch_norm = nn.LayerNorm(dims[0])
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            blocks = [VSSBlock(dim, d_state, mlp_ratio, scan_backend) for _ in range(depth)]
            if i + 1 < len(dims):
                blocks.append(PatchMerging(dim, dims[i + 1]))
            self.stages.append(nn.Sequential(*blocks))
        self.head = nn.Sequential(nn.LayerNorm(dims[-1]), nn.Linear(dims[-1], 2 * symbols_per_token))

    @property
    def stride(self) -> int:
        """Input positions per token side."""
        return self.config.patch_size * 2 ** (len(self.config.dims) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if x.dim() != 4 or h % self.stride or w % self.stride:
            raise ValueError(f"MambaJSCCEncoder: input (B, C, h, w) with h, w multiples of {self.stride}, "
                             f"got {tuple(x.shape)}")
        t = self.patch_norm(self.patch(x).permute(0, 2, 3, 1))
        for stage in self.stages:
            t = stage(t)
        z = self.head(t).reshape(x.shape[0], -1, 2)
        return power_normalize(z, over=self.config.power)
