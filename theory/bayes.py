"""Bayes-optimal receivers for a known encoder and channel law: the references a learned receiver is
measured against (docs/theory.md, 'The Bayes-optimal references').

Given ŷ = f(x) + σ Z (σ per real component) and a prior on x, the posterior is
    p(x | ŷ) ∝ p(x) exp(−‖ŷ − f(x)‖² / (2σ²))                                                 (B1)
and its optimal receivers are the posterior mean μ(ŷ) = E[X | ŷ] (minimum MSE, MMSE = E tr Cov(X | Ŷ)),
the posterior mode (MAP, for a discrete prior) and the posterior sampler X̂ ~ p(x | ŷ), whose MSE is
    E‖X̂ − X‖² = 2 · MMSE      (X̂ and X i.i.d. given Ŷ; Blau & Michaeli 2018).                 (B2)

The posterior is held as weighted support points: exactly for a finite codebook (weights = the
softmax of (B1) over the codewords), or by self-normalised importance sampling (SNIS) for a continuous
prior, w ∝ p(x) lik(ŷ | x) / q(x) over draws from a proposal q                                   (B3)
with E‖μ̂ − μ‖² ≈ Σ_k w_k² ‖x_k − μ̂‖² (delta method; Owen 2013, Eq. 9.8) and the effective sample
size 1 / Σ_k w_k² (Kong 1992). On a sphere the proposal is adaptive (``sphere_posterior``): prior
draws plus Gaussians in the tangent space, pooled by the balance heuristic. Arrays in, arrays out;
no dependency on ``jscgc``.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import numpy as np
from scipy.special import betaincinv

from theory.mi import _pairwise_sq

__all__ = ["PosteriorSummary", "gaussian_loglik", "summarise_posterior", "resample", "merge_summaries",
           "codebook_posterior", "sphere_log_map", "sphere_exp_map", "sphere_posterior",
           "sliced_wasserstein", "mean_and_se"]


class PosteriorSummary(NamedTuple):
    """What a weighted posterior gives per ŷ (N of them; m the data dimension, s samples each).

    mean: (N, m) μ(ŷ), the MMSE estimate.   var: (N,) tr Cov(X | ŷ), whose mean over ŷ is the MMSE.
    mode: (N, m) the support point of largest weight (MAP for a codebook).
    samples: (N, s, m) draws X̂ ~ p(x | ŷ) (exact for a codebook, resampled draws for SNIS).
    ess: (N,) effective sample size 1/Σ w².   mean_se: (N,) √(Σ w² ‖x − μ̂‖²), the SNIS error of μ̂.
    """
    mean: np.ndarray
    var: np.ndarray
    mode: np.ndarray
    samples: np.ndarray
    ess: np.ndarray
    mean_se: np.ndarray


def gaussian_loglik(y: np.ndarray, codes: np.ndarray, sigma: float) -> np.ndarray:
    """log lik(ŷ_i | x_k) up to a constant, −‖ŷ_i − f(x_k)‖² / (2σ²) of (B1): y (N, D), codes (K, D)
    shared by every ŷ or (N, K, D) per ŷ -> (N, K)."""
    y, codes = np.asarray(y, float), np.asarray(codes, float)
    if codes.ndim == 2:
        return -_pairwise_sq(y, codes) / (2 * sigma ** 2)
    return -np.sum((codes - y[:, None, :]) ** 2, axis=-1) / (2 * sigma ** 2)


def _weighted_sum(w: np.ndarray, blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Σ_k w_nk x_k over support blocks, each (K_b, m) shared or (N, K_b, m); w (N, Σ K_b) -> (N, m)."""
    out, start = 0.0, 0
    for b in blocks:
        wb = w[:, start:start + b.shape[-2]]
        out = out + (wb @ b if b.ndim == 2 else np.einsum("nk,nkm->nm", wb, b))
        start += b.shape[-2]
    return out


def _take(blocks: Sequence[np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Support points at indices idx (N, s) into the concatenated blocks -> (N, s, m)."""
    out = np.empty((*idx.shape, blocks[0].shape[-1]))
    rows = np.arange(idx.shape[0])[:, None].repeat(idx.shape[1], 1)
    start = 0
    for b in blocks:
        hit = (idx >= start) & (idx < start + b.shape[-2])
        local = idx[hit] - start
        out[hit] = b[local] if b.ndim == 2 else b[rows[hit], local]
        start += b.shape[-2]
    return out


def summarise_posterior(log_w: np.ndarray, blocks: Sequence[np.ndarray], n_samples: int,
                        rng: np.random.Generator) -> PosteriorSummary:
    """Posterior summaries from unnormalised log-weights (N, K) on support points given as blocks
    (each (K_b, m) shared by every ŷ or (N, K_b, m), Σ K_b = K); ``n_samples`` draws per ŷ by
    multinomial resampling. tr Cov = Σ w‖x‖² − ‖μ‖²; Σ w²‖x − μ‖² expanded the same way."""
    w = _normalise(log_w)
    w2 = w ** 2
    sq = [np.sum(b ** 2, axis=-1) for b in blocks]                             # ‖x‖², (K_b,) or (N, K_b)
    norm2 = np.concatenate([np.broadcast_to(s, (len(w), s.shape[-1])) for s in sq], axis=1)
    mean = _weighted_sum(w, blocks)
    m2 = np.sum(mean ** 2, axis=1)
    var = np.maximum(np.sum(w * norm2, axis=1) - m2, 0.0)
    se2 = np.sum(w2 * norm2, axis=1) - 2 * np.sum(mean * _weighted_sum(w2, blocks), axis=1) + m2 * w2.sum(1)
    return PosteriorSummary(mean, var, _take(blocks, np.argmax(w, axis=1)[:, None])[:, 0],
                            _take(blocks, resample(w, n_samples, rng)), 1.0 / w2.sum(1),
                            np.sqrt(np.maximum(se2, 0.0)))


def resample(w: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial resampling: ``n_samples`` indices per row drawn with probabilities w (N, K)
    -> (N, n_samples), by one searchsorted on the row-offset cumulative sums."""
    n, k = w.shape
    cdf = np.cumsum(w, axis=1)
    offset = np.arange(n)[:, None]
    flat = (cdf / cdf[:, -1:] + offset).ravel()
    u = rng.random((n, n_samples)) + offset
    idx = np.searchsorted(flat, u.ravel(), side="right").reshape(n, n_samples) - offset * k
    return np.clip(idx, 0, k - 1)


def merge_summaries(parts: Sequence[PosteriorSummary]) -> PosteriorSummary:
    """Concatenate the summaries of consecutive chunks of ŷ."""
    return PosteriorSummary(*(np.concatenate(f) for f in zip(*parts)))


def codebook_posterior(y: np.ndarray, codes: np.ndarray, points: np.ndarray, sigma: float,
                       n_samples: int, rng: np.random.Generator, chunk: int = 2048) -> PosteriorSummary:
    """The exact posterior (B1) of X uniform on the codebook ``points`` (K, m) with codewords
    ``codes`` (K, D), given ŷ (N, D): a softmax over the codewords, computed in chunks of ŷ."""
    pts = np.asarray(points, float)
    return merge_summaries([summarise_posterior(gaussian_loglik(y[s:s + chunk], codes, sigma), (pts,),
                                                n_samples, rng) for s in range(0, len(y), chunk)])


# ---- the unit sphere S^d ⊂ R^(d+1): tangent coordinates and the adaptive SNIS -------------------

def _normalise(log_w: np.ndarray) -> np.ndarray:
    """Rows of exp(log_w) (N, K) normalised to sum to 1."""
    w = np.exp(log_w - np.max(log_w, axis=1, keepdims=True))
    return w / np.sum(w, axis=1, keepdims=True)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis (finite inputs)."""
    top = np.max(a, axis=-1)
    return top + np.log(np.sum(np.exp(a - top[..., None]), axis=-1))


def _tangent_basis(c: np.ndarray) -> np.ndarray:
    """Orthonormal bases (N, d+1, d) of the tangent spaces c^⊥ of unit vectors c (N, d+1): the
    columns 2.. of the Householder reflection that maps e₁ to ±c."""
    e = np.zeros_like(c)
    e[:, 0] = 1.0
    v = np.where(c[:, :1] < 0, e - c, e + c)
    h = np.eye(c.shape[1]) - 2 * v[:, :, None] * v[:, None, :] / np.sum(v * v, axis=1)[:, None, None]
    return h[:, :, 1:]


def sphere_log_map(x: np.ndarray, c: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Tangent coordinates t (N, K, d) of points x (N, K, d+1), or (K, d+1) shared, at centres c
    (N, d+1) with tangent bases (N, d+1, d): ‖t‖ = ∠(x, c), direction that of x's component
    orthogonal to c (the Riemannian log map)."""
    cos = np.clip((x @ c[:, :, None])[..., 0], -1.0, 1.0)                       # (N, K)
    proj = x @ basis                                                             # ‖proj‖ = sin ∠
    r = np.arccos(cos)
    s = np.sqrt(np.sum(proj ** 2, axis=-1))
    return proj * np.where(s > 1e-12, r / np.maximum(s, 1e-300), 1.0)[..., None]


def sphere_exp_map(t: np.ndarray, c: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Points (N, K, d+1) at tangent coordinates t (N, K, d): cos‖t‖ c + sin‖t‖ B t/‖t‖."""
    r = np.linalg.norm(t, axis=-1, keepdims=True)
    direction = (t @ basis.transpose(0, 2, 1)) / np.maximum(r, 1e-300)
    return np.cos(r) * c[:, None, :] + np.sin(r) * direction


def _log_tangent_density(x: np.ndarray, comp: tuple) -> np.ndarray:
    """log q(x) w.r.t. the surface measure for x = exp_c(t), t ~ N(0, S = L Lᵀ), comp = (c, basis, L);
    x (N, K, d+1) -> (N, K): log N(t; 0, S) + (d − 1) log(r / sin r), r = ‖t‖ (the Jacobian of the exp map of S^d)."""
    c, basis, chol = comp
    t = sphere_log_map(x, c, basis)
    z = t @ np.linalg.inv(chol).transpose(0, 2, 1)                                # L⁻¹ t
    d = t.shape[-1]
    r = np.sqrt(np.sum(t ** 2, axis=-1))
    jac = np.where(r > 1e-8, np.log(np.maximum(r, 1e-300) / np.maximum(np.sin(r), 1e-300)), 0.0)
    logdet = np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)[:, None]
    return -0.5 * np.sum(z ** 2, axis=-1) - logdet - 0.5 * d * math.log(2 * math.pi) + (d - 1) * jac


def _fit_component(log_w: np.ndarray, x: np.ndarray, prev_cov: np.ndarray, max_sd: float,
                   top: int = 256) -> tuple:
    """The next proposal from weights log_w (N, K) on draws x (N, K, d+1), or (K, d+1) shared by every
    ŷ (then only each ŷ's ``top`` heaviest are used: a proposal needs no more): centred on the weighted mean
    of the tangent coordinates at the heaviest draw, N(0, 1.5 × the weighted covariance there +
    prev_cov / 16) in that centre's tangent space, eigenvalues capped at max_sd² (so that ‖t‖ < π
    with overwhelming probability and the exp map stays one-to-one)."""
    if x.ndim == 2 and x.shape[0] > top:                     # shared draws: fit to each ŷ's heaviest
        pick = np.argpartition(-log_w, top - 1, axis=1)[:, :top]
        log_w, x = np.take_along_axis(log_w, pick, axis=1), x[pick]
    w = _normalise(log_w)[:, None, :]                                          # (N, 1, K)
    c0 = _take((x,), np.argmax(w[:, 0], axis=1)[:, None])[:, 0]
    b0 = _tangent_basis(c0)
    c = sphere_exp_map(w @ sphere_log_map(x, c0, b0), c0, b0)[:, 0]
    basis = _tangent_basis(c)
    t = sphere_log_map(x, c, basis)
    dev = t - w @ t
    cov = 1.5 * (dev.transpose(0, 2, 1) * w) @ dev + prev_cov / 16
    val, vec = np.linalg.eigh(cov)
    cov = np.einsum("nde,ne,nfe->ndf", vec, np.clip(val, 1e-24, max_sd ** 2), vec)
    return (c, basis, np.linalg.cholesky(cov)), cov


def sphere_posterior(y: np.ndarray, sigma: float, encode: Callable[[np.ndarray], np.ndarray],
                     sample_prior: Callable[[int], np.ndarray], d: int, n_samples: int,
                     rng: np.random.Generator, pool: int = 4096, local: int = 128, rounds: int = 3,
                     ess_target: float = 400.0, chunk: int = 256) -> PosteriorSummary:
    """(B1) for X uniform on the unit S^d ⊂ R^(d+1) (natural coordinates), given ŷ (N, D) and the code
    map ``encode`` ((K, d+1) -> (K, D)), by SNIS (B3): first with ``pool`` prior draws
    (``sample_prior(k) -> (k, d+1)``) shared by every ŷ; where their effective sample size is below
    ``ess_target`` (a concentrated posterior), by adaptive multiple importance sampling instead
    (``_amis``). Returns the summaries of whichever was used for each ŷ."""
    prior = np.asarray(sample_prior(pool), float)
    prior_codes = encode(prior)
    parts = []
    for s in range(0, len(y), chunk):
        loglik = gaussian_loglik(y[s:s + chunk], prior_codes, sigma)
        post = summarise_posterior(loglik, (prior,), n_samples, rng)
        hard = post.ess < ess_target
        if rounds and hard.any():
            fine = _amis(y[s:s + chunk][hard], loglik[hard], prior, sigma, encode, sample_prior, d,
                         n_samples, rng, local, rounds)
            post = PosteriorSummary(*(np.where(hard.reshape(-1, *[1] * (a.ndim - 1)), _scatter(b, hard, a), a)
                                      for a, b in zip(post, fine)))
        parts.append(post)
    return merge_summaries(parts)


def _scatter(values: np.ndarray, mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``values`` (mask.sum(), ...) placed at the rows where ``mask`` holds, in an array like ``like``."""
    out = np.zeros_like(like)
    out[mask] = values
    return out


def _amis(y, loglik0, prior, sigma, encode, sample_prior, d, n_samples, rng, local, rounds,
          defensive: float = 0.1) -> PosteriorSummary:
    """Adaptive multiple importance sampling on S^d for ŷ (N, D): round j draws ``local`` points per ŷ
    from q_j = α · prior + (1 − α) · G_j (α = ``defensive``; Hesterberg 1995), G_j a Gaussian in the
    tangent space fitted to the weights so far (``_fit_component``; the first fit uses the prior pool
    with log-likelihoods ``loglik0`` (N, pool)). All rounds' draws are weighted by (B3) with q their
    deterministic mixture (balance heuristic, Veach & Guibas 1995): q/p = α + (1 − α) Vol(S^d) mean_j
    G_j. The prior part keeps the support full; refitting from earlier draws adds an O(1/K) bias, as in
    AMIS (Cornuet et al. 2012)."""
    n = len(y)
    log_vol = math.log(2) + (d + 1) / 2 * math.log(math.pi) - math.lgamma((d + 1) / 2)
    spacing = 2 * math.asin(math.sqrt(float(betaincinv(d / 2, d / 2, min(1.0, 4 / len(prior))))))
    cov = np.broadcast_to(np.eye(d) * 4 * spacing ** 2, (n, d, d))            # cov/16: (spacing/2)²
    k_prior = int(round(defensive * local))
    comps, log_w, x = [], loglik0, prior
    draws, loglik, dens = np.empty((n, 0, d + 1)), np.empty((n, 0)), np.empty((n, 0, 0))
    for _ in range(rounds):
        comp, cov = _fit_component(log_w, x, cov, math.pi / 8)
        comps.append(comp)
        c, basis, chol = comp
        t = rng.standard_normal((n, local - k_prior, d)) @ chol.transpose(0, 2, 1)
        new = np.concatenate([sample_prior(n * k_prior).reshape(n, k_prior, d + 1),
                              sphere_exp_map(t, c, basis)], axis=1)
        codes = encode(new.reshape(n * local, d + 1)).reshape(n, local, -1)
        dens = np.concatenate([np.concatenate([dens, _log_tangent_density(draws, comp)[..., None]], -1),
                               np.stack([_log_tangent_density(new, cj) for cj in comps], -1)], axis=1)
        draws = x = np.concatenate([draws, new], axis=1)
        loglik = np.concatenate([loglik, gaussian_loglik(y, codes, sigma)], axis=1)
        mix = np.logaddexp(math.log(defensive),
                           math.log(1 - defensive) + log_vol + _logsumexp(dens) - math.log(len(comps)))
        log_w = loglik - mix
    return summarise_posterior(log_w, (draws,), n_samples, rng)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int, rng: np.random.Generator) -> np.ndarray:
    """Sliced 2-Wasserstein distance between equal-size point sets per ŷ: a, b (N, s, m) -> (N,).
    SW₂² = mean over random unit directions θ of W₂²(θᵀa, θᵀb), each the mean squared difference of
    the sorted projections (Bonneel et al. 2015)."""
    theta = rng.standard_normal((directions, a.shape[-1]))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    pa, pb = np.sort(a @ theta.T, axis=1), np.sort(b @ theta.T, axis=1)         # (N, s, L)
    return np.sqrt(np.mean((pa - pb) ** 2, axis=(1, 2)))


def mean_and_se(v: np.ndarray) -> tuple[float, float]:
    """Mean of ``v`` (N,) and its standard error std/√N."""
    v = np.asarray(v, float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
