"""Mutual-information estimators and closed forms. Every function returns bits.

Known Gaussian channel Y = f(X) + σ Z (σ per real component, Z ~ N(0, I)), or, with ``scale``, a
fading channel known at the receiver after zero-forcing, Y = f(X) + σ S ⊙ Z with a known random scale S
per draw and component (S = 1/|h| for a gain h; I(X; Y, S) is estimated):
  * ``discrete_mi`` — X uniform on K codewords: I = log2 K − E[−log2 p(x | y)], exact up to
    Monte Carlo, with its standard error.
  * ``mi_sandwich`` — any X: InfoNCE with the true likelihood (lower) and its leave-one-out
    variant (upper), Poole et al. (ICML 2019).
  * ``kolchinsky_tracey`` — closed-form bounds for Gaussian mixtures (Entropy 2017).
Bit codes over a binary symmetric or erasure channel: :mod:`theory.bits`.
Closed forms: ``gaussian_channel_mi``, ``gaussian_pair_mi``, ``awgn_capacity``.
Unknown channel law (samples only): ``KSG`` (Kraskov et al. 2004, multivariate, on
scikit-learn's KD-trees — sklearn's mutual_info_regression is univariate) and ``InfoNCE``
(a trained critic; ≤ log2 batch by construction). Both offer ``estimate(x, y) -> bits``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import digamma, logsumexp

from theory.bound import LN2, binary_entropy  # noqa: F401  (binary_entropy re-exported)


class Estimate(NamedTuple):
    """A Monte Carlo estimate in bits and its standard error."""
    bits: float
    stderr: float


class Sandwich(NamedTuple):
    """Lower and upper estimates of I in bits with their standard errors."""
    low: float
    high: float
    low_stderr: float
    high_stderr: float


def awgn_capacity(n_real: int, snr_db) -> np.ndarray:
    """I(X; Ŷ) ≤ (n_real / 2) log2(1 + SNR) for n_real real channel uses at per-use SNR
    (= k log2(1 + SNR) for k complex symbols)."""
    return 0.5 * n_real * np.log2(1 + 10 ** (np.asarray(snr_db, float) / 10))


def gaussian_channel_mi(A: np.ndarray, cov: np.ndarray, noise_var: float) -> float:
    """Y = A X + N, X ~ N(0, Σ), N ~ N(0, σ² I): I = ½ log2 det(I + A Σ Aᵀ / σ²)."""
    A = np.atleast_2d(A)
    M = np.eye(A.shape[0]) + A @ cov @ A.T / noise_var
    return 0.5 * np.linalg.slogdet(M)[1] / LN2


def gaussian_pair_mi(rho: float, dim: int = 1) -> float:
    """dim independent pairs of unit Gaussians with correlation ρ: −(dim/2) log2(1 − ρ²)."""
    return -0.5 * dim * math.log2(1 - rho ** 2)


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :], 0.0)


def _scaled_sq(y: np.ndarray, c: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Σ_k (y_ik − c_jk)² / s_ik² for y, scale (m, D) and c (K, D) -> (m, K)."""
    w = 1.0 / scale ** 2
    return np.maximum((w * y * y).sum(1)[:, None] - 2 * (w * y) @ c.T + w @ (c * c).T, 0.0)


def _check_scale(scale: np.ndarray | None, shape: tuple[int, int], name: str) -> np.ndarray | None:
    if scale is None:
        return None
    scale = np.asarray(scale, float)
    if scale.shape != shape or not (np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError(f"{name}: scale must be finite, positive and of shape {shape}, got {scale.shape}")
    return scale


def discrete_mi(codewords: np.ndarray, sigma: float, n: int = 20000, seed: int = 0,
                chunk: int = 4096, scale: np.ndarray | None = None) -> Estimate:
    """I(X; Y) for X uniform on the rows of ``codewords`` (K, D) and Y = c_X + σ Z, or, with ``scale``
    (n, D) (one row per draw), I(X; Y, S) for Y = c_X + σ S ⊙ Z.

    The posterior p(x | y) is a softmax of −‖y − c_j‖² / (2σ²) (−Σ_k (y_k − c_jk)² / (2σ² s_k²)), so
    I = log2 K − E[−log2 p(X | Y)], estimated by Monte Carlo with n draws.
    """
    c = np.asarray(codewords, float)
    k = len(c)
    scale = _check_scale(scale, (n, c.shape[1]), "discrete_mi")
    rng = np.random.default_rng(seed)
    terms = []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        idx = rng.integers(0, k, m)
        if scale is None:
            y = c[idx] + sigma * rng.standard_normal((m, c.shape[1]))
            logits = -_pairwise_sq(y, c) / (2 * sigma ** 2)
        else:
            s = scale[start:start + m]
            y = c[idx] + sigma * s * rng.standard_normal((m, c.shape[1]))
            logits = -_scaled_sq(y, c, s) / (2 * sigma ** 2)
        terms.append((logits[np.arange(m), idx] - logsumexp(logits, axis=1)) / LN2)
    t = np.concatenate(terms)  # log2 p(x | y), <= 0
    return Estimate(float(math.log2(k) + t.mean()), float(t.std(ddof=1) / math.sqrt(n)))


def _sandwich_terms(y: np.ndarray, f: np.ndarray, sigma: float, rows: int = 512,
                    scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample InfoNCE and leave-one-out terms (nats) of one batch, y and f (b, D): with
    L_ij = (y_i·f_j − ‖f_j‖²/2)/σ² (log p(y_i | f_j) up to terms constant in j; with ``scale`` (b, D) and
    w_i = 1/(σ² s_i²), L_ij = (w_i ⊙ y_i)·f_j − w_i·(f_j ⊙ f_j)/2),
    (L_ii − log mean_j exp L_ij, L_ii − log mean_{j≠i} exp L_ij). L_ii in float64; the off-diagonal
    log-sum-exp ``rows`` rows at a time in float32 (absolute error ~1e-4 nats per row at 20 dB, ~1e-7
    on the means; tests/test_theory_mi.py compares with a float64 computation)."""
    b = len(f)
    if scale is None:
        half = 0.5 * np.sum(f * f, axis=1) / sigma ** 2
        diag = np.sum(y * f, axis=1) / sigma ** 2 - half
        scaled, half32, y32 = (f.T / sigma ** 2).astype(np.float32), half.astype(np.float32), y.astype(np.float32)
    else:
        w = 1.0 / (sigma * scale) ** 2
        diag = np.sum(w * y * f, axis=1) - 0.5 * np.sum(w * f * f, axis=1)
        y32, scaled = np.concatenate([w * y, -0.5 * w], 1).astype(np.float32), np.concatenate([f, f * f], 1).T
        scaled, half32 = scaled.astype(np.float32), np.float32(0.0)
    off = np.empty(b)
    for s in range(0, b, rows):
        L = y32[s:s + rows] @ scaled
        L -= half32                                                                 # (r, b)
        L[np.arange(len(L)), np.arange(s, s + len(L))] = -np.inf
        top = np.max(L, axis=1)
        L -= top[:, None]
        np.exp(L, out=L)
        off[s:s + rows] = top + np.log(np.sum(L, axis=1, dtype=np.float64))   # log Σ_{j≠i} exp L_ij
    return diag - (np.logaddexp(off, diag) - math.log(b)), diag - (off - math.log(b - 1))


def mi_sandwich(fx: np.ndarray, sigma: float, batch: int = 2048, seed: int = 0,
                scale: np.ndarray | None = None) -> Sandwich:
    """Bounds on I(X; Y) for Y = f(X) + σ Z given codes fx = f(x_i) (N, D) of i.i.d. samples; with
    ``scale`` (N, D), drawn independently of X and known at the receiver, on I(X; Y, S) for
    Y = f(X) + σ S ⊙ Z (p(s) cancels from every ratio below).

    In every batch of M samples, L_ij = log p(y_i | x_j). Lower (InfoNCE with the true critic):
    mean_i[L_ii − log mean_j L_ij] ≤ I. Upper (leave-one-out): mean_i[L_ii − log mean_{j≠i} L_ij]
    ≥ I in expectation. Trust the pair when the gap is small (needs log2 M ≳ I + 4).
    """
    fx = np.asarray(fx, float)
    scale = _check_scale(scale, fx.shape, "mi_sandwich")
    rng = np.random.default_rng(seed)
    low, high = [], []
    for start in range(0, len(fx) - batch + 1, batch):
        f = fx[start:start + batch]
        if scale is None:
            lo, hi = _sandwich_terms(f + sigma * rng.standard_normal(f.shape), f, sigma)
        else:
            s = scale[start:start + batch]
            lo, hi = _sandwich_terms(f + sigma * s * rng.standard_normal(f.shape), f, sigma, scale=s)
        low.append(lo)
        high.append(hi)
    if not low:
        raise ValueError(f"mi_sandwich: need at least batch={batch} samples, got {len(fx)}")
    lo, hi = np.concatenate(low) / LN2, np.concatenate(high) / LN2
    return Sandwich(float(lo.mean()), float(hi.mean()),
                    float(lo.std(ddof=1) / math.sqrt(len(lo))), float(hi.std(ddof=1) / math.sqrt(len(hi))))


def kolchinsky_tracey(means: np.ndarray, sigma: float, weights: np.ndarray | None = None):
    """Bounds on I(C; Y) for Y ~ Σ_k w_k N(μ_k, σ² I) and C the component: pairwise-distance
    estimators with the Bhattacharyya distance (lower) and the KL divergence (upper).
    For equal isotropic covariances KL = ‖Δμ‖²/(2σ²), BD = ‖Δμ‖²/(8σ²). Returns (low, high)."""
    mu = np.asarray(means, float)
    w = np.full(len(mu), 1 / len(mu)) if weights is None else np.asarray(weights, float)
    d2 = _pairwise_sq(mu, mu)

    def est(div):
        return float(-(w * logsumexp(-div, b=w[None, :], axis=1)).sum() / LN2)
    return est(d2 / (8 * sigma ** 2)), est(d2 / (2 * sigma ** 2))


class KSG:
    """Kraskov–Stögbauer–Grassberger estimator (algorithm 1) for multivariate x and y.

    ε_i is the max-norm distance to the k-th neighbour in the joint space; n_x, n_y count points
    strictly closer than ε_i in each marginal; Î = ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩.
    Biased low in high dimension and at high MI (docs/theory.md, 'KSG').
    """

    def __init__(self, k: int = 3):
        if k < 1:
            raise ValueError(f"KSG: k must be >= 1, got {k}")
        self.k = k

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        x = np.asarray(x, float).reshape(len(x), -1)
        y = np.asarray(y, float).reshape(len(y), -1)
        if len(x) != len(y):
            raise ValueError(f"KSG: x and y need the same number of rows, got {len(x)} and {len(y)}")
        from sklearn.neighbors import KDTree  # imported here: the toy runner does not need scikit-learn
        n = len(x)
        joint = np.concatenate([x, y], axis=1)
        dist, _ = KDTree(joint, metric="chebyshev").query(joint, k=self.k + 1)
        eps = np.nextafter(dist[:, -1], 0)  # strictly closer than the k-th neighbour
        nx = KDTree(x, metric="chebyshev").query_radius(x, eps, count_only=True) - 1
        ny = KDTree(y, metric="chebyshev").query_radius(y, eps, count_only=True) - 1
        nats = digamma(self.k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))
        return float(nats / LN2)


class InfoNCE:
    """InfoNCE lower bound with a learned separable critic f(x, y) = g(x)ᵀ h(y) (MLPs).

    Trained on random batches of the given pairs, then evaluated on held-out pairs:
    Î = mean_i[f(x_i, y_i) − log mean_j f(x_i, y_j)] ≤ log2(batch) bits by construction.
    """

    def __init__(self, batch: int = 256, steps: int = 600, hidden: int = 128, embed: int = 32,
                 lr: float = 2e-3, seed: int = 0):
        self.batch, self.steps, self.hidden, self.embed, self.lr, self.seed = (
            batch, steps, hidden, embed, lr, seed)

    def _net(self, d_in):
        import torch
        return torch.nn.Sequential(torch.nn.Linear(d_in, self.hidden), torch.nn.ReLU(),
                                   torch.nn.Linear(self.hidden, self.hidden), torch.nn.ReLU(),
                                   torch.nn.Linear(self.hidden, self.embed))

    @staticmethod
    def _bound(gx, hy):
        scores = gx @ hy.T
        return (scores.diag() - scores.logsumexp(1) + math.log(len(gx))).mean()

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        import torch  # imported here: the closed forms and the sandwich need only numpy
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        x = torch.as_tensor(np.asarray(x, float).reshape(len(x), -1), dtype=torch.float32)
        y = torch.as_tensor(np.asarray(y, float).reshape(len(y), -1), dtype=torch.float32)
        n_train = len(x) * 3 // 4
        if len(x) - n_train < self.batch:
            raise ValueError(f"InfoNCE: need at least {4 * self.batch} samples, got {len(x)}")
        fx, fy = self._net(x.shape[1]), self._net(y.shape[1])
        opt = torch.optim.Adam([*fx.parameters(), *fy.parameters()], lr=self.lr)
        for _ in range(self.steps):
            i = torch.randint(0, n_train, (self.batch,), generator=g)
            loss = -self._bound(fx(x[i]), fy(y[i]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            xt, yt = x[n_train:], y[n_train:]
            vals = [self._bound(fx(xt[s:s + self.batch]), fy(yt[s:s + self.batch]))
                    for s in range(0, len(xt) - self.batch + 1, self.batch)]
        return float(torch.stack(vals).mean() / LN2)
