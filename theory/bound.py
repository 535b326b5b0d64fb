"""Theorem 1 of the JSCGC paper, as published and made rigorous, plus Fano's inequality.

All information is in bits unless a name ends in ``_nats``. Conventions for C: the paper writes
K(δ) ≈ C δ^(−d) for the number of δ-balls needed on the manifold. We use the *probability*
(packing-style) convention K(δ) = 1 / P_max(δ), P_max(δ) = sup_v P_X(B(v, δ)), which is what the
continuum Fano inequality needs (Duchi & Wainwright 2013); for X uniform on M, C → Vol(M)/ω_d as
δ → 0 with ω_d = π^(d/2)/Γ(d/2 + 1). Covering numbers N(δ) and packing numbers M(δ) differ from
it by at most 2^d (N(2δ) ≤ M(δ) ≤ N(δ)).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

LN2 = math.log(2.0)


def bits_to_nats(bits):
    return bits * LN2


def nats_to_bits(nats):
    return nats / LN2


def _check(d, C):
    if not (d > 0 and C > 0):
        raise ValueError(f"bound: expected d > 0 and C > 0, got d={d}, C={C}")


def delta_star(mi_bits, d, C):
    """The paper's Theorem 1 exactly: δ* = C^(1/d) · 2^(−(I + 1)/d), I in bits."""
    _check(d, C)
    return C ** (1.0 / d) * np.power(2.0, -(np.asarray(mi_bits, dtype=float) + 1.0) / d)


def delta_star_nats(mi_nats, d, C):
    """The same bound with I in nats: C^(1/d) · e^(−(I + ln 2)/d)."""
    _check(d, C)
    return C ** (1.0 / d) * np.exp(-(np.asarray(mi_nats, dtype=float) + LN2) / d)


def binary_entropy(p):
    """h(p) = −p log2 p − (1 − p) log2 (1 − p) in bits; h(0) = h(1) = 0 (and 0 outside [0, 1])."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -p * np.log2(p) - (1 - p) * np.log2(1 - p)
    return np.where((p <= 0) | (p >= 1), 0.0, h)


def kl2(a, b):
    """Binary KL divergence kl(a ‖ b) in bits, with 0 log 0 = 0 and +inf where undefined."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(a > 0, a * np.log2(a / b), 0.0)
        t2 = np.where(a < 1, (1 - a) * np.log2((1 - a) / (1 - b)), 0.0)
    return t1 + t2


def delta_star_rigorous(mi_bits, d, C, p):
    """Finite-P_e Fano version: δ*_p = C^(1/d) · 2^(−(I + h(p)) / ((1 − p) d)).

    Exact Fano for X uniform on K(δ) = C δ^(−d) cells gives log2 K(δ) ≤ (I + h(p)) / (1 − p) for
    any decoder with P(x̂ ∉ B(x, δ)) ≤ p. As p → 0 this is 2^(1/d) times the paper's δ*; at finite
    p it can be below it. Valid as a lower bound on δ wherever C δ^(−d) ≤ 1/P_max(δ).
    """
    _check(d, C)
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p >= 1)):
        raise ValueError(f"delta_star_rigorous: p must be in [0, 1), got {p}")
    return C ** (1.0 / d) * np.power(2.0, -(np.asarray(mi_bits, float) + binary_entropy(p)) / ((1 - p) * d))


def continuum_fano_holds(mi_bits, pe, pmax) -> np.ndarray:
    """Continuum Fano: any decoder with P(d(X, X̂) > δ) = P_e satisfies
    I(X; Ŷ) ≥ kl2(1 − P_e ‖ P_max(δ)) whenever 1 − P_e ≥ P_max(δ) (else nothing is implied).
    Returns True where the inequality is not violated."""
    pe, pmax = np.asarray(pe, float), np.asarray(pmax, float)
    implied = 1 - pe > pmax
    return ~implied | (kl2(1 - pe, pmax) <= np.asarray(mi_bits, float) + 1e-12)


def delta_star_continuum(mi_bits: float, p: float, pmax: Callable[[float], float],
                         delta_hi: float, tol: float = 1e-9) -> float:
    """The continuum-Fano lower bound on δ at P_e = p: inf{δ : kl2(1 − p ‖ P_max(δ)) ≤ I}.

    P_max must be non-decreasing in δ. Bisection on (0, delta_hi]; returns the largest δ known
    to be excluded (within ``tol`` below the infimum, so still a valid lower bound), 0 when
    everything is allowed, and delta_hi if even that is excluded."""
    def allowed(delta):
        q = pmax(delta)
        return q >= 1 - p or kl2(1 - p, q) <= mi_bits
    lo, hi = 0.0, delta_hi
    if not allowed(hi):
        return hi
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if allowed(mid) else (mid, hi)
    return lo


class FanoCheck(NamedTuple):
    """H(X|Y) and the Fano bound h(P_e) + P_e log2(K − 1) for the MAP decoder, in bits."""
    cond_entropy: float
    pe_map: float
    fano_bound: float
    holds: bool


def fano_check(joint: np.ndarray) -> FanoCheck:
    """Fano's inequality on a discrete joint pmf ``joint[x, y]`` (K × L, sums to 1)."""
    joint = np.asarray(joint, float)
    if joint.ndim != 2 or np.any(joint < 0) or not math.isclose(joint.sum(), 1.0, rel_tol=1e-9):
        raise ValueError("fano_check: expected a non-negative 2-D pmf summing to 1")
    k = joint.shape[0]
    py = joint.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = -np.nansum(np.where(joint > 0, joint * np.log2(joint / py), 0.0))
    pe = 1.0 - joint.max(0).sum()
    pe = min(max(pe, 0.0), 1.0)
    bound = float(binary_entropy(pe)) + (pe * math.log2(k - 1) if k > 1 else 0.0)
    return FanoCheck(float(cond), pe, bound, bool(cond <= bound + 1e-10))
