"""Pixel-fidelity metrics of an image pair (B, 3, H, W) in [0, 1], ``ref`` the source and ``out`` the
reconstruction, each per image (B,): PSNR, MS-SSIM, low-pass PSNR and the colour-statistics distance.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from jscgc.metrics.common import check_pair

__all__ = ["psnr", "ms_ssim", "ms_ssim_scales", "lowpass_psnr", "colour_distance"]


def psnr(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image for data range 1: (B,). Identical images give +inf (no cap)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    check_pair(ref, out)
    return peak_signal_noise_ratio(out.double(), ref.double(), data_range=1.0, reduction="none",
                                   dim=(1, 2, 3)).float()


#: Wang et al. (2003)'s exponents for the five scales, finest first (they sum to 1.0001, as published).
_MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_SSIM_WINDOW = 11      # torchmetrics' Gaussian window side for σ = 1.5: int(3.5σ + 0.5)·2 + 1


def ms_ssim_scales(side: int) -> int:
    """Number of MS-SSIM scales an image with short side ``side`` supports: the largest L ≤ 5 whose
    coarsest scale — the side halved L − 1 times by 2x2 average pooling, which floors — still holds one
    11-px window, ⌊side / 2^(L−1)⌋ ≥ 11. Five scales need 176 px, four 88, three 44, two 22; 0 below 11."""
    return max((n for n in range(1, len(_MS_SSIM_BETAS) + 1) if side >> (n - 1) >= _SSIM_WINDOW), default=0)


def _gaussian_window(dtype=torch.float64) -> list[float]:
    """torchmetrics' SSIM window as 11 one-dimensional weights (σ = 1.5, normalised to sum 1): its 2-D
    kernel is the outer product of this vector with itself, so filtering rows then columns is the same."""
    d = torch.arange((1 - _SSIM_WINDOW) / 2, (1 + _SSIM_WINDOW) / 2, 1.0, dtype=dtype)
    g = torch.exp(-(d / 1.5) ** 2 / 2)
    return (g / g.sum()).tolist()


def _separable_blur(x: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """Valid filtering of (..., H + k − 1, W + k − 1) by the k x k kernel weightsᵀ·weights, rows then
    columns, as k shifted multiply-adds per axis: (..., H, W). In float64 this is 20x faster here than
    one grouped 11x11 ``conv2d`` (which has no fast float64 path on CPU) and agrees with it to ~1e-16."""
    k = len(weights)
    for dim in (-2, -1):
        n = x.shape[dim] - k + 1
        out = x.narrow(dim, 0, n) * weights[0]
        for i in range(1, k):
            out.add_(x.narrow(dim, i, n), alpha=weights[i])
        x = out
    return x


def _ssim_terms(out: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(SSIM, contrast-structure) per image, both (B,), as torchmetrics' ``structural_similarity_index_measure``
    computes them for data range 1 with its Gaussian window: both images reflection-padded by 5 px, the
    local means, variances and covariance filtered by the window; SSIM averaged over all H x W positions,
    contrast-structure over the interior (H − 10) x (W − 10), as torchmetrics does."""
    c1, c2, pad, n = 0.01 ** 2, 0.03 ** 2, _SSIM_WINDOW // 2, out.shape[0]
    a, b = (F.pad(x, (pad, pad, pad, pad), mode="reflect") for x in (out, ref))
    mu_a, mu_b, aa, bb, ab = _separable_blur(torch.cat((a, b, a * a, b * b, a * b)), _gaussian_window()).split(n)
    mu_aa, mu_bb, mu_ab = mu_a.pow(2), mu_b.pow(2), mu_a * mu_b
    upper = 2 * (ab - mu_ab) + c2
    lower = (aa - mu_aa).clamp(min=0) + (bb - mu_bb).clamp(min=0) + c2
    sim = ((2 * mu_ab + c1) * upper) / ((mu_aa + mu_bb + c1) * lower)
    cs = (upper / lower)[..., pad:-pad, pad:-pad]
    return sim.reshape(n, -1).mean(-1), cs.reshape(n, -1).mean(-1)


def ms_ssim(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per image (B,) (Wang et al. 2003): SSIM with torchmetrics' conventions (11x11 Gaussian
    window, σ = 1.5, data range 1, float64, negative terms clipped to 0 as its ``normalize="relu"``);
    identical images give 1.

    L = :func:`ms_ssim_scales` of the short side. At L = 5 (short side ≥ 176 px) this equals torchmetrics'
    ``multiscale_structural_similarity_index_measure`` with its default betas (to ~1e-7, tested at every
    side it accepts from 32 to 200 px). Smaller images use the L finest scales with the first L betas
    renormalised to sum 1; below 11 px: ValueError.

    Hand-written for two reasons: torchmetrics' MS-SSIM refuses images whose side is ≤ 10·(L − 1)² (its
    guard squares L − 1 where the pooling halves the side L − 1 times), so four scales were refused up to
    98 px although 88 px suffice; and its float64 11x11 convolution took 4 s for one 768x512 image on this
    project's 2-core CPU, where the separable filter of :func:`_ssim_terms` takes a fraction of that
    (``python bench/ms_ssim.py``)."""
    check_pair(ref, out)
    side = min(ref.shape[-2:])
    scales = ms_ssim_scales(side)
    if scales < 1:
        raise ValueError(f"ms_ssim: images need a short side of at least {_SSIM_WINDOW} px, got {side}")
    betas = _MS_SSIM_BETAS[:scales]
    if scales < len(_MS_SSIM_BETAS):
        betas = tuple(b / sum(betas) for b in betas)
    a, b, terms = out.double(), ref.double(), []
    for _ in range(scales):                       # contrast-structure at every scale, full SSIM at the last
        sim, cs = _ssim_terms(a, b)
        terms.append(torch.relu(cs))
        a, b = F.avg_pool2d(a, (2, 2)), F.avg_pool2d(b, (2, 2))
    terms[-1] = torch.relu(sim)
    exponents = torch.tensor(betas, device=ref.device).view(-1, 1)   # float32, as torchmetrics builds them
    return torch.prod(torch.stack(terms) ** exponents, dim=0).float()


def lowpass_psnr(ref: torch.Tensor, out: torch.Tensor, factor: int) -> torch.Tensor:
    """PSNR (B,) after ``factor``x``factor`` average pooling of both images: it keeps layout and
    colour and discards texture, so a generator that follows ŷ scores close to an MSE decoder
    while one that invents content does not (the semantic-consistency measure of
    docs/recipe_search.md)."""
    check_pair(ref, out)
    return psnr(F.avg_pool2d(ref, factor), F.avg_pool2d(out, factor))


def colour_distance(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the (mean, std) of each RGB channel of the two images: (B,).

    0 for identical colour statistics; a global colour cast of c in every channel gives √3·c."""
    check_pair(ref, out)
    stats = lambda x: torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)  # noqa: E731
    return (stats(ref) - stats(out)).norm(dim=1)
