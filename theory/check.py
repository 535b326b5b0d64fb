"""Checking Theorem 1 on a measured system: the empirical δ with a distribution-free CI, the
valid lower bounds on it, the channel capacity and the interval for I(X; Ŷ) they are taken at, and
the learned receiver against the Bayes-optimal ones (``reference_values``).

Everything here takes arrays (reconstruction errors, channel codes or bits, a noise level) and a
:class:`theory.tasks.ToySource`; pulling those arrays out of a trained system is the runner's job
(``experiments/toy_manifold.py``), so ``theory`` does not depend on ``jscgc``. Information in bits.
Which bound is valid where: docs/theory.md, 'The rigorous versions the code implements'.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import numpy as np
from scipy.special import bdtr

from theory.bayes import PosteriorSummary, mean_and_se, sliced_wasserstein
from theory.bound import delta_star, delta_star_continuum, delta_star_rigorous
from theory.covering import envelope_constant
from theory.bits import bec_code_mi, bsc_capacity, bsc_code_mi
from theory.mi import Estimate, awgn_capacity, discrete_mi, mi_sandwich
from theory.tasks import ToySource

__all__ = ["MIInterval", "EnvelopeBound", "quantile_ci", "delta_star_envelope", "capacity_bits",
           "mi_of_bits", "mi_of_codebook", "mi_of_samples", "bound_row_values", "bound_rows",
           "binom_ppf", "reference_values"]


class MIInterval(NamedTuple):
    """A point estimate of I(X; Ŷ) in bits and the interval [low, high] the bounds are taken at."""
    bits: float
    low: float
    high: float


class EnvelopeBound(NamedTuple):
    """δ*_p and the constant C it was computed with (C δ^(−d) ≤ 1/P_max(δ) on (0, δ*_p])."""
    delta: float
    C: float


def quantile_ci(err: np.ndarray, q: float, level: float = 0.95) -> tuple[float, float, float]:
    """The q-quantile of ``err`` and its distribution-free CI from binomial order statistics
    (docs/theory.md, '6. A lower bound, tested with confidence intervals')."""
    e = np.sort(err)
    n = len(e)
    k = min(n - 1, max(0, math.ceil(q * n) - 1))
    lo = binom_ppf((1 - level) / 2, n, q) - 1
    hi = binom_ppf(1 - (1 - level) / 2, n, q)
    return float(e[k]), float(e[max(lo, 0)]), float(e[min(hi, n - 1)])


def binom_ppf(level: float, n: int, q: float) -> int:
    """The ``level``-quantile of Binomial(n, q): the smallest k with P(B ≤ k) ≥ level (what
    scipy.stats.binom.ppf returns, without importing scipy.stats)."""
    return int(np.searchsorted(bdtr(np.arange(n + 1), n, q), level, side="left"))


def delta_star_envelope(mi_bits: float, p: float, d: int, C: float,
                        pmax: Callable[[float], float], iterations: int = 6,
                        n: int = 400, vectorised: bool = False) -> EnvelopeBound:
    """δ*_p = C^(1/d) 2^(−(I + h(p))/((1 − p) d)) with C lowered until C δ^(−d) ≤ 1/P_max(δ) on
    (0, δ*_p] (``envelope_constant`` on an ``n``-point grid; docs/theory.md, 'A valid C: the lower
    envelope of 1/P_max'). Iterated from the given C: shrinking C only shrinks δ*_p, so every step
    keeps the constant valid where it is used. Valid, not the largest valid C: when δ*_p is near
    the diameter the iteration can stop well below it (a weaker but still valid bound).
    ``vectorised``: ``pmax`` takes an array of δ (else it is called once per grid point)."""
    grid_pmax = pmax if vectorised else np.vectorize(pmax)
    for _ in range(iterations):
        delta = float(delta_star_rigorous(mi_bits, d, C, p))
        C = min(C, envelope_constant(grid_pmax, d, max(delta, 1e-9), n=n))
    return EnvelopeBound(float(delta_star_rigorous(mi_bits, d, C, p)), C)


def capacity_bits(n_symbols: int, snr_db: float, crossover: float | None = None) -> float:
    """Capacity of the channel: n complex AWGN uses at ``snr_db``, or, when ``crossover`` is given
    (a binary method), n uses of the BSC with that crossover."""
    if crossover is not None:
        return float(bsc_capacity(n_symbols, crossover))
    return float(awgn_capacity(2 * n_symbols, snr_db))


def _two_stderr(est: Estimate) -> MIInterval:
    return MIInterval(est.bits, est.bits - 2 * est.stderr, est.bits + 2 * est.stderr)


def mi_of_bits(bits: np.ndarray, prob: float, kind: str = "bsc") -> MIInterval:
    """Deterministic 0/1 codes (N, n) of samples of X over a BSC(prob) (``kind`` "bsc") or a BEC(prob)
    ("bec"): exact for the empirical code distribution, ± 2 standard errors."""
    if kind not in ("bsc", "bec"):
        raise ValueError(f"mi_of_bits: kind must be 'bsc' or 'bec', got {kind!r}")
    return _two_stderr((bsc_code_mi if kind == "bsc" else bec_code_mi)(bits, prob))


def mi_of_codebook(codes: np.ndarray, sigma: float, seed: int, n: int = 20000,
                   scale: np.ndarray | None = None) -> MIInterval:
    """X uniform on the rows of ``codes`` (one per codeword) over Y = c + σ Z (with ``scale`` (n, D):
    Y = c + σ S ⊙ Z, S known; ``theory.mi.discrete_mi``): Monte Carlo with ``n`` draws, ± 2 standard errors."""
    return _two_stderr(discrete_mi(codes, sigma, n=n, seed=seed, scale=scale))


def mi_of_samples(codes: np.ndarray, sigma: float, batch: int, seed: int,
                  capacity: float, scale: np.ndarray | None = None) -> MIInterval:
    """Codes (N, D) of i.i.d. samples of a continuous X over Y = c + σ Z (with ``scale`` (N, D):
    Y = c + σ S ⊙ Z, S known): the InfoNCE / leave-one-out sandwich, clipped to ``capacity``. Both the
    leave-one-out estimate and the capacity are upper bounds; the sandwich's upper side runs away once
    I > log2(batch) − 4 or so, where the capacity is the tighter one. The point estimate is the middle of the two."""
    sw = mi_sandwich(codes, sigma, batch=batch, seed=seed, scale=scale)
    high = min(sw.high + 2 * sw.high_stderr, capacity)
    mid = min(0.5 * (sw.low + min(sw.high, capacity)), high)
    return MIInterval(mid, min(sw.low - 2 * sw.low_stderr, mid), high)


def bound_row_values(src: ToySource, mi_hi: float, p: float, ci_high: float) -> dict:
    """The rigorous (envelope-constant) and continuum-Fano δ* at P_e = p and I = ``mi_hi``, the valid
    C the rigorous one was computed with, and whether the CI end most favourable to the data (``ci_high``) is above both."""
    rig = delta_star_envelope(mi_hi, p, src.d, src.C, src.pmax, vectorised=True)
    cont = delta_star_continuum(mi_hi, p, src.pmax, src.diameter, tol=1e-6)
    return {"delta_star_rigorous": rig.delta, "C_rigorous": rig.C, "delta_star_continuum": cont,
            "bound_holds": bool(ci_high >= max(rig.delta, cont) - 1e-9)}


def bound_rows(err: np.ndarray, mi_bits: float, mi_hi: float, src: ToySource,
               ps: Sequence[float]) -> list[dict]:
    """One dict per P_e = p: δ_emp (the (1 − p)-quantile of ``err``) with its 95% CI, the paper's δ*
    at ``mi_bits``, the rigorous ones at ``mi_hi`` and whether each holds at the CI's upper end."""
    rows = []
    for p in ps:
        d_emp, lo, hi = quantile_ci(err, 1 - p)
        paper = float(delta_star(mi_bits, src.d, src.C))
        rows.append({"p": p, "delta_emp": d_emp, "delta_emp_ci_low": lo, "delta_emp_ci_high": hi,
                     "delta_star_paper": paper, **bound_row_values(src, mi_hi, p, hi),
                     "paper_bound_holds": bool(hi >= paper)})
    return rows


def _ratio(a: float, b: float) -> float:
    """a / b, NaN when b is 0 (an MMSE that underflows: the posterior is a point mass)."""
    return a / b if b > 0 else float("nan")


def reference_values(x: np.ndarray, xh: np.ndarray, mse: float, post: PosteriorSummary, gen: np.ndarray,
                     distance: Callable[[np.ndarray], np.ndarray], ps: Sequence[float], exact: bool,
                     rng: np.random.Generator, directions: int = 64) -> tuple[dict, list[dict]]:
    """A learned receiver against the Bayes-optimal ones of the same encoder and channel
    (docs/theory.md, 'The Bayes-optimal references').

    Args:
        x, xh: (N, m) source points and the receiver's outputs for N received ŷ.
        mse: the receiver's MSE on its whole evaluation set (N of it or more ŷ).
        post: the posterior given those N ŷ (``theory.bayes``), with ≥ 1 + 2s samples per ŷ.
        gen: (L, s, m) s receiver outputs for each of the first L ŷ (for the distributional distance).
        distance: the exact distance of points to the source's support, (K, m) -> (K,).
        exact: whether ``post`` is exact (codebook) or SNIS (then its Monte Carlo error is reported).

    Returns the per-(source, method, SNR) values and one dict per p of ``ps``: the MMSE (mean of
    tr Cov(X | ŷ)) with its standard error over ŷ; ``mse`` over MMSE and over 2 · MMSE (B2); the
    receiver's MSE on the same N ŷ and the standard error of the paired difference MSE − MMSE; the
    exact sampler's measured MSE; the sliced-W₂ distance between the receiver's and exact posterior
    samples per ŷ (and between two sets of exact samples: the finite-s floor); the SNIS effective
    sample size and RMS error of μ̂; the MMSE estimate's median distance to the support; and δ_emp
    at each p of the sampler (with its CI), of the MMSE estimate and (codebook only) of MAP.
    """
    s, draw = gen.shape[1], post.samples[:, 0]
    err_rx = np.sum((xh - x) ** 2, axis=1)
    mmse, mmse_se = mean_and_se(post.var)
    a, b = post.samples[:len(gen), 1:1 + s], post.samples[:len(gen), 1 + s:1 + 2 * s]
    common = {"ref_n": len(x), "ref_exact": exact, "mmse": mmse, "mmse_se": mmse_se,
              "mse_over_mmse": _ratio(mse, mmse), "mse_over_sampler_mse": _ratio(mse, 2 * mmse),
              "mse_on_ref": float(err_rx.mean()), "mse_minus_mmse_se": mean_and_se(err_rx - post.var)[1],
              "sampler_mse": float(np.mean(np.sum((draw - x) ** 2, axis=1))),
              "snis_ess_median": float("nan") if exact else float(np.median(post.ess)),
              "snis_mean_rmse": 0.0 if exact else float(np.sqrt(np.mean(post.mean_se ** 2))),
              "sw_to_posterior": float(np.mean(sliced_wasserstein(gen, a, directions, rng))),
              "sw_floor": float(np.mean(sliced_wasserstein(b, a, directions, rng))),
              "sw_n": len(gen), "sw_samples": s,
              "dist_to_manifold_median_mmse": float(np.median(distance(post.mean)))}
    rows = []
    for p in ps:
        d_s, lo, hi = quantile_ci(np.linalg.norm(draw - x, axis=1), 1 - p)
        rows.append({"delta_emp_sampler": d_s, "delta_emp_sampler_ci_low": lo, "delta_emp_sampler_ci_high": hi,
                     "delta_emp_mmse": quantile_ci(np.linalg.norm(post.mean - x, axis=1), 1 - p)[0],
                     "delta_emp_map": quantile_ci(np.linalg.norm(post.mode - x, axis=1), 1 - p)[0]
                     if exact else float("nan")})
    return common, rows
