"""Set measures: Fréchet distances between Gaussians fitted to the feature rows of two lists of images
(the references and a receiver's outputs), and the features they use (TAEF2 latents, 8x8-patch DCT
coefficients); :class:`SetMeasure` binds a feature function into the measure the table uses.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Callable

import numpy as np
import torch

from jscgc.metrics.common import MemoisedFeatures

__all__ = ["frechet_distance", "latent_features", "set_frechet", "PATCH", "PATCH_CAP", "PATCH_SEED", "dct_matrix",
           "patch_dct_features", "patch_fd", "SetMeasure"]


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
