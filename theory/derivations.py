"""Symbolic checks (sympy) of the JSCGC paper's algebra. Run: ``python -m theory.derivations``.

Each check prints the identity and whether it holds; the module exits non-zero if any fails.
Checks that a published form is *not* an identity (Eq. 8's missing factor T) are phrased as
"differs" claims, verified by exhibiting a nonzero difference.
"""
from __future__ import annotations

import sys
from typing import Callable

import sympy as sp

t, T, s = sp.symbols("t T sigma", positive=True)
x0, xT, xt, v, vth, mu1, mu2, y = sp.symbols("x0 x_T x_t v v_theta mu1 mu2 y", real=True)
I, p, d, C, K, delta = sp.symbols("I p d C K delta", positive=True)


def _path():
    """Eq. 5: x_t = (1 − t/T) x0 + (t/T) x_T has dx_t/dt = (x_T − x0)/T, and x_t = x0 at t = 0,
    x_T at t = T; with T = 1 the target velocity is v = x1 − x0."""
    path = (1 - t / T) * x0 + (t / T) * xT
    return [sp.diff(path, t) - (xT - x0) / T, path.subs(t, 0) - x0, path.subs(t, T) - xT,
            sp.diff(path.subs(T, 1), t) - (xT - x0)]


def _path_step():
    """Eq. 8 (first half): with v = x_T − x0, one unit step back on the path is x_{t−1} = x_t − v/T."""
    path = lambda tt: (1 - tt / T) * x0 + (tt / T) * xT
    return [path(t - 1) - (path(t) - (xT - x0) / T)]


def _eq8_corrected():
    """Eq. 8 (second half), corrected: on the path v = (T/t)(x_t − x0); the paper's (1/t)(x_t − x0)
    equals it only when T = 1."""
    xt_path = (1 - t / T) * x0 + (t / T) * xT
    return [(T / t) * (xt_path - x0) - (xT - x0)]


def _eq8_published_differs():
    """The published v = (1/t)(x_t − x0) is off by the factor T: the difference is nonzero for T ≠ 1."""
    xt_path = (1 - t / T) * x0 + (t / T) * xT
    diff = sp.simplify((xt_path - x0) / t - (xT - x0))
    return [sp.simplify(diff.subs(T, 1))], diff


def _gaussian_kl():
    """Eq. 7: KL(N(μ1, σ²) ‖ N(μ2, σ²)) = (μ1 − μ2)² / (2σ²), by integrating the log-ratio."""
    p1 = sp.exp(-(y - mu1) ** 2 / (2 * s ** 2)) / sp.sqrt(2 * sp.pi * s ** 2)
    log_ratio = sp.expand((-(y - mu1) ** 2 + (y - mu2) ** 2) / (2 * s ** 2))
    kl = sp.integrate(p1 * log_ratio, (y, -sp.oo, sp.oo))
    return [sp.simplify(kl - (mu1 - mu2) ** 2 / (2 * s ** 2))]


def _kl_of_steps():
    """Eq. 7 with means x_t − v/T and x_t − v_θ/T: KL = (v − v_θ)² / (2σ² T²) — the squared error of
    Eq. 10 up to a positive constant, so both have the same minimiser v_θ = v."""
    kl = ((xt - v / T) - (xt - vth / T)) ** 2 / (2 * s ** 2)
    return [sp.simplify(kl - (v - vth) ** 2 / (2 * s ** 2 * T ** 2)),
            sp.solve(sp.diff((v - vth) ** 2, vth), vth)[0] - v]


def _fano():
    """Eq. 19–22: with H(X) = log2 K, Fano H(X|Y) ≤ h(p) + p log2(K − 1) ≤ h(p) + p log2 K gives
    log2 K ≤ (I + h)/(1 − p); with K = C δ^(−d) the boundary is δ = C^(1/d) 2^(−(I + h)/((1 − p) d)),
    and p → 0 (h → 0) gives 2^(1/d) times the paper's δ* = C^(1/d) 2^(−(I + 1)/d)."""
    h = sp.Symbol("h", positive=True)
    logK = sp.Symbol("L", positive=True)  # log2 K
    boundary = sp.solve(sp.Eq(logK - h - p * logK, I), logK)[0]
    delta_sol = sp.solve(sp.Eq(sp.log(C * delta ** (-d), 2), boundary), delta)[0]
    rigorous = C ** (1 / d) * 2 ** (-(I + h) / ((1 - p) * d))
    paper = C ** (1 / d) * 2 ** (-(I + 1) / d)
    return [sp.simplify(boundary - (I + h) / (1 - p)),
            sp.simplify(sp.expand_log(sp.log(delta_sol) - sp.log(rigorous), force=True)),
            sp.simplify(rigorous.subs({p: 0, h: 0}) / paper - 2 ** (1 / d))]


def _nats():
    """Units: C^(1/d) 2^(−(I_bits + 1)/d) = C^(1/d) e^(−(I_nats + ln 2)/d) with I_nats = I_bits ln 2."""
    return [sp.simplify(sp.log(C ** (1 / d) * 2 ** (-(I + 1) / d))
                        - sp.log(C ** (1 / d) * sp.exp(-(I * sp.log(2) + sp.log(2)) / d)))]


CHECKS: list[tuple[str, Callable]] = [
    ("Eq. 5: linear path, endpoints and velocity", _path),
    ("Eq. 8: x_{t-1} = x_t - v/T on the path", _path_step),
    ("Eq. 8 corrected: v = (T/t)(x_t - x0)", _eq8_corrected),
    ("Eq. 7: KL of equal-variance Gaussians", _gaussian_kl),
    ("Eq. 7 -> 10: KL = ||v - v_theta||^2/(2 sigma^2 T^2), minimiser v", _kl_of_steps),
    ("Eq. 19-22: Fano rearrangement, finite p, p -> 0 limit", _fano),
    ("Units: bits and nats forms agree", _nats),
]


def run(verbose: bool = True) -> bool:
    """Run every check; return True when all hold."""
    ok = True
    for name, fn in CHECKS:
        residuals = [sp.simplify(r) for r in fn()]
        holds = all(r == 0 for r in residuals)
        ok &= holds
        if verbose:
            print(f"[{'holds' if holds else 'FAILS'}] {name}")
    zero_at_T1, diff = _eq8_published_differs()
    differs = all(r == 0 for r in zero_at_T1) and sp.simplify(diff) != 0
    ok &= differs
    if verbose:
        print(f"[{'holds' if differs else 'FAILS'}] Eq. 8 as published differs from the path "
              f"unless T = 1: (x_t - x0)/t - v = {sp.factor(diff)}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
