"""Spectral and sharpness measures of an image pair (B, 3, H, W) in [0, 1], ``ref`` the source and ``out``
the reconstruction, each per image (B,): the power-spectrum distance, the high-frequency energy ratio and
the local detail match (blur raises the distance and lowers the other two; noise raises the distance and
the HF ratio and lowers the detail match).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from jscgc.metrics.common import check_pair

__all__ = ["radial_power_spectrum", "power_spectrum_distance", "hf_ratio", "detail_match"]


def radial_power_spectrum(images: torch.Tensor, bins: int = 32) -> torch.Tensor:
    """Radially averaged power spectrum of the luma: (B, bins), bin k covers radii in
    [k, k+1)·r_max/bins of the centred 2-D FFT (DC excluded), mean power per bin."""
    luma = (images * torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype,
                                  device=images.device).view(1, 3, 1, 1)).sum(1)
    luma = luma - luma.mean((1, 2), keepdim=True)
    power = torch.fft.fftshift(torch.fft.fft2(luma.double()), dim=(-2, -1)).abs().pow(2)
    h, w = luma.shape[-2:]
    fy = (torch.arange(h, device=images.device) - h // 2).double() / h
    fx = (torch.arange(w, device=images.device) - w // 2).double() / w
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    idx = (r / 0.5 * bins).long().clamp(max=bins)          # radius 0.5 cycles/px = Nyquist
    idx[r == 0] = bins                                     # drop DC
    flat = power.flatten(1)
    sums = torch.zeros(power.shape[0], bins + 1, dtype=flat.dtype, device=flat.device)
    sums.index_add_(1, idx.flatten(), flat)
    counts = torch.bincount(idx.flatten(), minlength=bins + 1).clamp(min=1)
    return (sums / counts)[:, :bins]


def power_spectrum_distance(ref: torch.Tensor, out: torch.Tensor, bins: int = 32) -> torch.Tensor:
    """Mean over radial bins of |log10 P_out − log10 P_ref|: (B,). 0 for equal spectra; blur
    removes high-frequency power and raises it, as does added noise."""
    check_pair(ref, out)
    eps = 1e-12
    a, b = radial_power_spectrum(ref, bins), radial_power_spectrum(out, bins)
    return (torch.log10(a + eps) - torch.log10(b + eps)).abs().mean(1).float()


def hf_ratio(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Mean |Laplacian| of ``out`` over that of ``ref`` per image: (B,). 1 = as sharp as the source."""
    check_pair(ref, out)
    k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=ref.dtype, device=ref.device)
    k = k.view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    lap = lambda x: F.conv2d(x, k, groups=3).abs().mean((1, 2, 3))  # noqa: E731
    return lap(out) / lap(ref).clamp(min=1e-12)


def detail_match(ref: torch.Tensor, out: torch.Tensor, block: int = 8) -> torch.Tensor:
    """Local detail match per image: (B,) in [0, 1], 1 iff both images have the same high-frequency
    energy in every ``block`` x ``block`` block.

    With E(x)_b the mean |Laplacian| over the three channels in block b (the HF ratio's energy, kept local),
    the score is Σ_b min(E_out, E_ref) / Σ_b max(E_out, E_ref) (the weighted Jaccard, or Ruzicka,
    similarity of the two energy maps). Unlike :func:`hf_ratio`, which rewards any extra energy, it falls
    both for blur (E_out < E_ref) and for noise or invented texture where the source is smooth
    (E_out > E_ref); it is symmetric, and out = c·ref scores min(c, 1/c). It measures *how much* detail
    sits *where*, not its phase: re-drawn texture of the right strength in the right place scores high, so
    it is a sharpness measure, not a fidelity one. The last H mod block rows and W mod block columns of
    the Laplacian are not used."""
    check_pair(ref, out)
    k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=ref.dtype, device=ref.device)
    k = k.view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    energy = lambda x: F.avg_pool2d(F.conv2d(x, k, groups=3).abs().mean(1, keepdim=True), block)  # noqa: E731
    a, b = energy(ref), energy(out)
    if a.shape[-1] * a.shape[-2] == 0:
        raise ValueError(f"detail_match: images of {tuple(ref.shape[-2:])} hold no {block}x{block} block")
    return (torch.minimum(a, b).flatten(1).sum(1) / torch.maximum(a, b).flatten(1).sum(1).clamp(min=1e-12)).float()
