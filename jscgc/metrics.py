"""Image metrics, in one module, with one table, :data:`METRICS`: name -> :class:`Metric` (its
function, input range, kind, what it needs, orientation and figure label).

All images are float RGB (B, 3, H, W) in [0, 1]; ``ref`` is the source, ``out`` the reconstruction.

============== ===== ========= =========== ===================================================================
name           kind  needs     better      what
============== ===== ========= =========== ===================================================================
psnr           image           higher      10 log10(1 / MSE) in dB (torchmetrics); identical images give +inf
ms_ssim        image           higher      multi-scale SSIM, in [0, 1]; fewer scales below 176 px (:func:`ms_ssim`)
psnr_lp8       image           higher      PSNR after 8x8 average pooling of both: semantic consistency
psnr_lp16      image           higher      PSNR after 16x16 average pooling
colour_dist    image           lower       distance between per-channel means and standard deviations
psd_dist       image           lower       mean |Δ log10| of radially averaged power spectra (blur, noise)
hf_ratio       image           closer to 1 mean |Laplacian| of out / that of ref (< 1 blur, > 1 extra texture
                                           *or noise*: noise wins it, so read it beside detail_match)
detail_match   image           higher      Σ min / Σ max of the local (8x8-block) |Laplacian| energies of out and
                                           ref, in [0, 1]: falls for blur and for noise alike (:func:`detail_match`)
lpips_alex     image lpips     lower       LPIPS v0.1, AlexNet (Zhang et al. 2018; the paper's LPIPS), from
                                           ``<weights>/lpips`` (:mod:`jscgc.perceptual`, no torchvision)
lpips_vgg      image lpips     lower       LPIPS v0.1, VGG16
lpips_squeeze  image lpips     lower       LPIPS v0.1, SqueezeNet 1.1
dists          image dists     lower       DISTS (Ding et al. 2020), VGG16 from ``<weights>/lpips``, α/β from
                                           ``<weights>/dists``
dino           image dino      higher      cosine similarity of DINO ViT CLS features from ``<weights>/dino``
latent_fd      set   extractor lower       Fréchet distance of TAEF2-encoder features, every latent position a
                                           sample: a distributional *proxy*, not FID
rfid           set   fid       lower       Fréchet Inception distance from ``<weights>/fid``
patch_fd       set             lower       Fréchet distance of 8x8-patch DCT-II AC coefficients, summed over R, G,
                                           B: distributional and independent of TAEF2 (:func:`patch_fd`)
============== ===== ========= =========== ===================================================================

A metric whose weights (or extractor) are missing is reported as unavailable by name with the reason,
never with a made-up number: see :func:`available_metrics`.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["psnr", "ms_ssim", "ms_ssim_scales", "lowpass_psnr", "colour_distance", "radial_power_spectrum",
           "power_spectrum_distance", "hf_ratio", "frechet_distance", "latent_features", "set_frechet",
           "dct_matrix", "patch_dct_features", "patch_fd",
           "perceptual_distance", "detail_match", "dino_similarity", "MetricUnavailable", "Metric", "METRICS", "available_metrics",
           "evaluate_images", "evaluate_sets"]


class MetricUnavailable(RuntimeError):
    """A metric's weights or library are missing; the message says which."""


def _check(ref: torch.Tensor, out: torch.Tensor) -> None:
    if ref.shape != out.shape or ref.dim() != 4 or ref.shape[1] != 3:
        raise ValueError(f"metrics: expected two (B, 3, H, W) images in [0, 1] of the same shape, got "
                         f"{tuple(ref.shape)} and {tuple(out.shape)}")


def psnr(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image for data range 1: (B,). Identical images give +inf (no cap)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    _check(ref, out)
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
    _check(ref, out)
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
    _check(ref, out)
    return psnr(F.avg_pool2d(ref, factor), F.avg_pool2d(out, factor))


def colour_distance(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the (mean, std) of each RGB channel of the two images: (B,).

    0 for identical colour statistics; a global colour cast of c in every channel gives √3·c."""
    _check(ref, out)
    stats = lambda x: torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)  # noqa: E731
    return (stats(ref) - stats(out)).norm(dim=1)


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
    _check(ref, out)
    eps = 1e-12
    a, b = radial_power_spectrum(ref, bins), radial_power_spectrum(out, bins)
    return (torch.log10(a + eps) - torch.log10(b + eps)).abs().mean(1).float()


def hf_ratio(ref: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Mean |Laplacian| of ``out`` over that of ``ref`` per image: (B,). 1 = as sharp as the source."""
    _check(ref, out)
    k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=ref.dtype, device=ref.device)
    k = k.view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    lap = lambda x: F.conv2d(x, k, groups=3).abs().mean((1, 2, 3))  # noqa: E731
    return lap(out) / lap(ref).clamp(min=1e-12)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (n, d) and b (m, d):
    |μa − μb|² + tr(Σa + Σb − 2 (Σa Σb)^½)  (Heusel et al. 2017, Eq. 6), by
    :func:`jscgc.bootstrap.frechet_from_moments`."""
    from jscgc.bootstrap import frechet_from_moments

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"frechet_distance: expected (n, d) and (m, d) with n, m ≥ 2, got {a.shape}, {b.shape}")
    return frechet_from_moments(a.mean(0), np.atleast_2d(np.cov(a, rowvar=False)),
                                b.mean(0), np.atleast_2d(np.cov(b, rowvar=False)))


def latent_features(images: torch.Tensor, extractor) -> np.ndarray:
    """TAEF2 (or any extractor's) latents of (B, 3, H, W) images, every position a row: (B·h·w, C).
    Images are cropped to a multiple of the extractor's factor."""
    f = extractor.factor
    h, w = images.shape[-2] // f * f, images.shape[-1] // f * f
    with torch.no_grad():
        z = extractor.encode(images[..., :h, :w])
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).double().cpu().numpy()


def perceptual_distance(ref: torch.Tensor, out: torch.Tensor, model, features: Callable,
                        reference: Callable) -> torch.Tensor:
    """A learned distance (:class:`jscgc.perceptual.LPIPS` or :class:`~jscgc.perceptual.DISTS`) per image
    pair: (B,). ``features(x)`` maps [0, 1] images to the model's features in its own input convention
    (LPIPS: x ↦ 2x − 1 first; DISTS: as is); ``reference`` is the same function memoised, so a reference's
    features are computed once per image (:class:`MemoisedFeatures`)."""
    _check(ref, out)
    with torch.inference_mode():
        return model.compare(reference(ref), features(out)).float()


def _weights(sub: str) -> Path:
    from jscgc.latents import weights_root

    root = weights_root()
    if root is None or not (root / sub).exists():
        raise MetricUnavailable(f"weights '{sub}' not found (set JSCGC_WEIGHTS to a folder holding {sub})")
    return root / sub


#: bytes of reference features a learned metric keeps (24 references of 384x256 need about 1.1 GB for VGG)
FEATURE_CACHE_BYTES = 2 << 30


def _perceptual(name: str, extractor) -> dict:
    """The loaded model and a memo of reference features for ``lpips_<net>`` or ``dists``."""
    from jscgc import perceptual

    try:
        if name == "dists":
            model, signed = perceptual.load_dists(_weights("dists").parent), False
        else:
            model, signed = perceptual.load_lpips(name.removeprefix("lpips_"), _weights("lpips")), True
    except FileNotFoundError as err:
        raise MetricUnavailable(f"{name}: {err}") from None

    def features(images):
        with torch.inference_mode():
            return model.features(images * 2 - 1 if signed else images)

    return {"model": model, "features": features,
            "reference": MemoisedFeatures(features, max_bytes=FEATURE_CACHE_BYTES)}


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
    _check(ref, out)
    k = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=ref.dtype, device=ref.device)
    k = k.view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    energy = lambda x: F.avg_pool2d(F.conv2d(x, k, groups=3).abs().mean(1, keepdim=True), block)  # noqa: E731
    a, b = energy(ref), energy(out)
    if a.shape[-1] * a.shape[-2] == 0:
        raise ValueError(f"detail_match: images of {tuple(ref.shape[-2:])} hold no {block}x{block} block")
    return (torch.minimum(a, b).flatten(1).sum(1) / torch.maximum(a, b).flatten(1).sum(1).clamp(min=1e-12)).float()


def _dino_model():
    """DINO ViT (e.g. facebook/dino-vitb16) from ``<weights>/dino`` through transformers."""
    folder = _weights("dino")
    try:
        from transformers import AutoModel
    except Exception:
        raise MetricUnavailable("dino needs the transformers package") from None
    return AutoModel.from_pretrained(folder).eval()


def dino_similarity(ref: torch.Tensor, out: torch.Tensor, model) -> torch.Tensor:
    """Cosine similarity of the CLS token of a ViT (ImageNet-normalised 224x224 input): (B,)."""
    _check(ref, out)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    size = getattr(getattr(model, "config", None), "image_size", 224)
    prep = lambda x: (F.interpolate(x, size=(size, size), mode="bicubic", antialias=True)  # noqa: E731
                      .clamp(0, 1) - mean.to(x)) / std.to(x)
    with torch.no_grad():
        a = model(pixel_values=prep(ref)).last_hidden_state[:, 0]
        b = model(pixel_values=prep(out)).last_hidden_state[:, 0]
    return F.cosine_similarity(a, b, dim=1)


def _inception_features():
    """Inception-v3 pool features via torch-fidelity with ``<weights>/fid/pt_inception-2015-12-05-6726825d.pth``."""
    folder = _weights("fid")
    path = folder / "pt_inception-2015-12-05-6726825d.pth"
    if not path.is_file():
        raise MetricUnavailable(f"rfid: {path} is missing")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception:
        raise MetricUnavailable("rfid needs the torch-fidelity package") from None
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    net.eval()

    def features(x):
        with torch.no_grad():
            return net((x * 255).round().to(torch.uint8))[0].double().cpu().numpy()

    return features


def set_frechet(refs: list[torch.Tensor], outs: list[torch.Tensor], features: Callable) -> float:
    """Fréchet distance between the pooled ``features`` rows of two image lists (sizes may differ)."""
    return frechet_distance(np.concatenate([features(r) for r in refs]),
                            np.concatenate([features(o) for o in outs]))


#: patch side, patches kept per image at most, and the seed of the draw: see :func:`patch_fd`
PATCH, PATCH_CAP, PATCH_SEED = 8, 512, 0


def dct_matrix(n: int = PATCH, dtype=torch.float64) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n): C[k, i] = s_k cos(π (2i + 1) k / 2n), s_0 = √(1/n), s_k = √(2/n);
    C @ x is ``scipy.fft.dct(x, norm="ortho")`` and C @ P @ Cᵀ the 2-D transform of an (n, n) patch P."""
    k, i = torch.arange(n, dtype=dtype)[:, None], torch.arange(n, dtype=dtype)[None, :]
    c = torch.cos(torch.pi * (2 * i + 1) * k / (2 * n)) * (2.0 / n) ** 0.5
    c[0] /= 2 ** 0.5
    return c


def patch_dct_features(images: torch.Tensor, size: int = PATCH, cap: int | None = PATCH_CAP,
                       seed: int = PATCH_SEED, keep_dc: bool = False) -> np.ndarray:
    """2-D orthonormal DCT-II of the non-overlapping ``size`` x ``size`` patches of (B, 3, H, W) images,
    every colour channel apart: (N, 3, size² − 1) float64, or (N, 3, size²) with ``keep_dc``; the last
    axis in row-major (k_y, k_x) order with (0, 0) dropped. Computed as one matmul of the row-major
    flattened patches by C ⊗ C, C = :func:`dct_matrix` (vec(C P Cᵀ) = (C ⊗ C) vec(P)). The grid starts
    at the top-left corner; the last H mod size rows and W mod size columns are not used.

    With more than ``cap`` patches in an image, ``cap`` of them are kept, drawn without replacement by a
    generator seeded with ``seed`` for *every* image: the draw depends only on the patch count, so a
    reference and its output are sampled at the same places, and the features of a set do not depend on
    the order of its images. N = Σ_images min(patches, cap)."""
    b, ch, h, w = images.shape
    gh, gw = h // size, w // size
    if gh * gw == 0:
        raise ValueError(f"patch_dct_features: images of {h}x{w} hold no {size}x{size} patch")
    keep = torch.arange(gh * gw)
    if cap is not None and gh * gw > cap:
        keep = torch.randperm(gh * gw, generator=torch.Generator().manual_seed(seed))[:cap].sort().values
    keep = keep.to(images.device)
    x = images[..., :gh * size, :gw * size].reshape(b, ch, gh, size, gw, size)
    patches = x[:, :, keep // gw, :, keep % gw, :]                   # only the kept ones: (n, B, 3, size, size)
    patches = patches.transpose(0, 1).reshape(-1, size * size).double()     # rows (B, n, 3) flattened
    c = dct_matrix(size).to(images.device)
    coeffs = patches @ torch.kron(c, c).T          # one 2-D matmul: 3x faster here than a batched (B, n, 3, ·)
    if not keep_dc:
        coeffs = coeffs[:, 1:]
    return coeffs.reshape(-1, ch, coeffs.shape[-1]).cpu().numpy()


def patch_fd(refs: list[torch.Tensor], outs: list[torch.Tensor], size: int = PATCH,
             cap: int | None = PATCH_CAP, seed: int = PATCH_SEED) -> float:
    """Σ over R, G, B of the Fréchet distance (:func:`frechet_distance`) between the size² − 1 = 63 AC
    coefficients of the 8x8-patch DCT (:func:`patch_dct_features`) of two lists of (1, 3, H, W) images in
    [0, 1] (sizes may differ between items): 0 for identical sets, ≥ 0 otherwise (up to rounding).

    A distributional texture statistic that needs no network, so it is neutral between receivers that
    generate in the TAEF2 latent space and those that do not (``latent_fd`` is not). Choices:

    * Per colour channel, summed: the Fréchet distance of the Gaussians whose covariance is block-diagonal
      over channels. Unlike luma alone it sees chroma noise, colour bleeding and desaturated texture
      (opposite errors in R and B partly cancel in luma). A joint 189-dimensional fit would also keep
      cross-channel correlations, but its 189x189 matrix square root alone took 0.1–0.6 s here and its
      finite-sample bias grows with the dimension; three 63x63 fits take about 1 ms each.
    * DC dropped: DC = 8 × the patch mean, the 8x8 block means that ``psnr_lp8`` and ``colour_dist``
      already measure. Its variance across patches (scene layout) is far larger than any AC coefficient's,
      so it would swamp the texture and sharpness differences (blur, invented detail) this metric is for.
    * At most ``cap`` = 512 patches per image (a fixed-seed draw, the same places in a reference and its
      output), so the cost stays flat in the image size: 24 images of 384x256 (1536 patches each) against
      24 others took 0.13–0.17 s (median of 15) on this project's shared 2-core CPU (see
      tests/test_metrics.py), torch and BLAS held to one thread meanwhile (:func:`_one_thread`).

    Values are not comparable across ``cap``, ``size`` or reference sets (the finite-sample bias depends
    on N): compare receivers on the same references with the same settings."""
    with _one_thread():
        a, b = (np.concatenate([patch_dct_features(x, size, cap, seed) for x in xs]) for xs in (refs, outs))
        # contiguous copies: np.cov of a strided column view misses BLAS (30x slower)
        return float(sum(frechet_distance(np.ascontiguousarray(a[:, k]), np.ascontiguousarray(b[:, k]))
                         for k in range(a.shape[1])))


@contextmanager
def _one_thread():
    """torch's intra-op pool and BLAS (threadpoolctl, which scikit-learn brings) on one thread for the
    duration, restored after. For these small operations threads only cost, and on a shared CPU they can
    cost much: on this project's 2 cores under load, the features of 24 images took 250 ms with two torch
    threads and 31–70 ms with one, np.cov of 12288x63 380 ms with OpenBLAS's two threads and 3.5 ms with one."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = lambda *args, **kwargs: nullcontext()  # noqa: E731
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- the table
class MemoisedFeatures:
    """``features(images)`` remembered by the images' content (shape and bytes): the last ``size`` calls,
    and at most ``max_bytes`` of tensors or arrays (None: no byte limit), least recently used dropped first.

    A set metric is called once per receiver and SNR with the *same* references; without this the
    TAEF2 encoder re-encoded all 24 Kodak references each time (28 times in the `small` benchmark). A
    learned metric (LPIPS, DISTS) compares one reference with every receiver's output the same way.
    Keyed by content, not identity, so a copy of a reference hits and a changed tensor never does."""

    def __init__(self, features: Callable[[torch.Tensor], Any], size: int = 256, max_bytes: int | None = None):
        self.features, self.size, self.max_bytes, self.cache = features, size, max_bytes, OrderedDict()

    @staticmethod
    def nbytes(value) -> int:
        """Bytes held by a tensor, an array, or a list/tuple of them."""
        if isinstance(value, (list, tuple)):
            return sum(MemoisedFeatures.nbytes(v) for v in value)
        if isinstance(value, torch.Tensor):
            return value.element_size() * value.nelement()
        return int(getattr(value, "nbytes", 0))

    def __call__(self, images: torch.Tensor):
        data = images.detach().cpu().contiguous()
        key = (tuple(data.shape), str(data.dtype), hashlib.sha1(data.numpy().tobytes()).hexdigest())
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        value = self.cache[key] = self.features(images)
        budget = float("inf") if self.max_bytes is None else self.max_bytes
        held = 0 if self.max_bytes is None else sum(self.nbytes(v) for v in self.cache.values())
        while len(self.cache) > 1 and (len(self.cache) > self.size or held > budget):
            _, dropped = self.cache.popitem(last=False)
            held -= 0 if self.max_bytes is None else self.nbytes(dropped)
        return value


def _need_extractor(name: str, extractor) -> dict:
    if extractor is None:
        raise MetricUnavailable(f"{name} needs the TAEF2 extractor")
    return {"extractor": extractor}


def _rows(images: torch.Tensor, features: Callable) -> np.ndarray:
    """A set metric's feature rows computed by a loaded network (rFID's Inception)."""
    return features(images)


class SetMeasure:
    """A bound set metric. ``(refs, outs) -> float``: the Fréchet distance between Gaussians fitted to the
    feature rows of two paired lists of (1, 3, H, W) images, summed over the features' blocks (colour
    channels for ``patch_fd``). ``stats(image)``: one image's :class:`jscgc.bootstrap.GaussianStats`, what
    :func:`jscgc.bootstrap.paired_bootstrap` resamples; memoised by content, so a reference's statistics are
    computed once. ``features(image)``: rows (N, d) or (N, k, d)."""

    def __init__(self, features: Callable[[torch.Tensor], np.ndarray]):
        from jscgc.bootstrap import gaussian_stats

        self.features = features
        self.stats = MemoisedFeatures(lambda image: gaussian_stats(self.features(image)), size=256)

    def __call__(self, refs: list[torch.Tensor], outs: list[torch.Tensor]) -> float:
        from jscgc.bootstrap import frechet_from_stats

        a, b = [self.stats(r) for r in refs], [self.stats(o) for o in outs]
        with _one_thread():
            return frechet_from_stats(a, b)


#: What a metric may need -> a loader (metric name, extractor) -> keyword arguments for its function;
#: a loader raises MetricUnavailable with the reason. "lpips", "dists", "dino", "fid": folders under the weights
#: root (DISTS also reads VGG16 from "lpips").
_LOADERS: dict[str, Callable[[str, Any], dict]] = {
    "": lambda name, extractor: {},
    "extractor": _need_extractor,
    "lpips": _perceptual,
    "dists": _perceptual,
    "dino": lambda name, extractor: {"model": _dino_model()},
    "fid": lambda name, extractor: {"features": _inception_features()},
}


@dataclass(frozen=True)
class Metric:
    """One metric, everything a caller needs to know about it.

    function: ``kind == "image"``: (ref, out, **loaded) -> (B,); ``"set"``: the features,
        (image (1, 3, H, W), **loaded) -> rows (N, d) or (N, k, d), bound into a :class:`SetMeasure`;
        ``loaded`` being what ``needs`` loads (nothing for "").
    input_range: the range every image must be in (all metrics: [0, 1]).
    kind: "image" (per image pair) or "set" (over two lists of (1, 3, H, W) images).
    needs: "" (nothing), "extractor" (the TAEF2 latent extractor passed to :func:`available_metrics`), or
        the weights folder it loads from the weights root: "lpips", "dists", "dino" or "fid".
    better: "higher", "lower" or "one" (closer to 1 is better). label: the title in figures.
    """
    name: str
    function: Callable
    kind: str
    needs: str
    better: str
    label: str
    input_range: tuple[float, float] = (0.0, 1.0)

    def bind(self, extractor=None) -> Callable:
        """The ready callable; MetricUnavailable (with the reason) when what it needs is missing."""
        loaded = _LOADERS[self.needs](self.name, extractor)
        fn = partial(self.function, **loaded) if loaded else self.function
        return SetMeasure(fn) if self.kind == "set" else fn

    def describe(self) -> dict:
        """A JSON-ready description (experiments write it to config.json)."""
        fn, args = self.function, ""
        if isinstance(fn, partial):
            fn, args = fn.func, ", ".join(f"{k}={v!r}" for k, v in fn.keywords.items())
        text = f"{fn.__module__}.{fn.__qualname__}({args})"
        if self.kind == "set":
            text = f"Fréchet distance of Gaussians fitted to the rows of {text}, summed over blocks"
        return {"function": text, "input_range": list(self.input_range),
                "kind": self.kind, "needs": self.needs or "nothing", "better": self.better, "label": self.label}


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("psnr", psnr, "image", "", "higher", "PSNR (dB)"),
    Metric("ms_ssim", ms_ssim, "image", "", "higher", "MS-SSIM"),
    Metric("psnr_lp8", partial(lowpass_psnr, factor=8), "image", "", "higher", "low-pass PSNR ÷8 (dB)"),
    Metric("psnr_lp16", partial(lowpass_psnr, factor=16), "image", "", "higher", "low-pass PSNR ÷16 (dB)"),
    Metric("colour_dist", colour_distance, "image", "", "lower", "colour-statistics distance"),
    Metric("psd_dist", power_spectrum_distance, "image", "", "lower", "power-spectrum distance"),
    Metric("hf_ratio", hf_ratio, "image", "", "one", "high-frequency energy ratio"),
    Metric("detail_match", detail_match, "image", "", "higher", "local detail match"),
    Metric("lpips_alex", perceptual_distance, "image", "lpips", "lower", "LPIPS (AlexNet)"),
    Metric("lpips_vgg", perceptual_distance, "image", "lpips", "lower", "LPIPS (VGG16)"),
    Metric("lpips_squeeze", perceptual_distance, "image", "lpips", "lower", "LPIPS (SqueezeNet)"),
    Metric("dists", perceptual_distance, "image", "dists", "lower", "DISTS"),
    Metric("dino", dino_similarity, "image", "dino", "higher", "DINO score"),
    Metric("latent_fd", latent_features, "set", "extractor", "lower", "TAEF2-feature Fréchet distance (proxy, not FID)"),
    Metric("rfid", _rows, "set", "fid", "lower", "rFID"),
    Metric("patch_fd", patch_dct_features, "set", "", "lower", "8×8 DCT-patch Fréchet distance"),
]}


def available_metrics(names: list[str] | None = None, extractor=None) -> tuple[dict, dict[str, str]]:
    """Resolve metrics: ({name: callable}, {name: reason unavailable}).

    ``extractor`` (a TAEF2) enables ``latent_fd``; LPIPS, DINO and rFID load their weights here."""
    names = list(METRICS) if names is None else list(names)
    for name in names:
        if name not in METRICS:
            raise ValueError(f"metrics: unknown metric {name!r}; expected some of {sorted(METRICS)}")
    ready, missing = {}, {}
    for name in names:
        try:
            ready[name] = METRICS[name].bind(extractor)
        except MetricUnavailable as err:
            missing[name] = str(err)
    return ready, missing


def evaluate_images(ref: torch.Tensor, out: torch.Tensor, ready: dict) -> dict[str, list[float]]:
    """Every ready per-image metric on (B, 3, H, W) pairs: {name: [B values]}."""
    with torch.no_grad():
        return {name: fn(ref, out).tolist() for name, fn in ready.items()
                if METRICS[name].kind == "image"}


def evaluate_sets(refs: list[torch.Tensor], outs: list[torch.Tensor], ready: dict) -> dict[str, float]:
    """Every ready set metric over lists of (1, 3, H, W) images (sizes may differ between items)."""
    with torch.no_grad():
        return {name: float(fn(refs, outs)) for name, fn in ready.items() if METRICS[name].kind == "set"}
