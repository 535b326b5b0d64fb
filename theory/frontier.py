"""The distortion–perception frontier for MSE distortion and Wasserstein-2 perception, and the optimal
transport that measures it on samples (docs/theory.md, 'The distortion–perception frontier').

With X* = E[X | Ŷ] and D* = E‖X − X*‖² (the MMSE), the least MSE of an estimator X̂ = g(Ŷ) whose
output law is within W2 distance P of the source law is (Freirich, Michaeli & Meir 2021, Thm. 4)
    D(P) = D* + max(0, W2(p_X, p_X*) − P)²                                                    (F1)
reached at P = 0 by X̂ = T(X*), T the optimal transport map from p_X* to p_X, whose MSE is
D* + W2(p_X, p_X*)² because X − X* is orthogonal to every function of Ŷ. A posterior sampler has
P = 0 and D = 2·D* (Blau & Michaeli 2018), which is above D(0) unless p_X* is a point.

W2 between distributions known by samples is computed exactly for the empirical measures, by the
assignment problem (scipy's ``linear_sum_assignment``) on squared distances: equal-size samples with
uniform weights, or a finite law with rational weights whose atoms are repeated to the sample size.
Arrays in, arrays out; no dependency on ``jscgc``.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from theory.mi import _pairwise_sq

__all__ = ["frontier", "w2_assignment", "w2_to_atoms", "repeat_atoms"]


def frontier(mmse: float, w2_star: float, p: np.ndarray | float) -> np.ndarray | float:
    """(F1): the least MSE D(P) at perception P (W2 to the source law), from D* = ``mmse`` and
    W2(p_X, p_X*) = ``w2_star``. Same shape as ``p``; non-increasing, D(0) = D* + W2*², D(P ≥ W2*) = D*."""
    if mmse < 0 or w2_star < 0:
        raise ValueError(f"frontier: expected mmse >= 0 and w2_star >= 0, got {mmse}, {w2_star}")
    gap = np.maximum(0.0, w2_star - np.asarray(p, float))
    out = mmse + gap ** 2
    return float(out) if np.ndim(p) == 0 else out


def w2_assignment(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """W2 between the empirical laws of two equal-size samples a, b (n, m), uniform weights:
    √(min_π (1/n) Σ_i ‖a_i − b_π(i)‖²) over permutations π — exact for these empirical laws (the
    Birkhoff–von Neumann theorem: some optimal coupling of two uniform n-point laws is a permutation).
    Returns (W2, π) with π (n,) the index into b matched to each a_i. O(n³): n of a few thousand."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 2 or a.shape != b.shape or len(a) < 1:
        raise ValueError(f"w2_assignment: expected two (n, m) samples of one shape, got {a.shape}, {b.shape}")
    cost = _pairwise_sq(a, b)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(a), int)
    perm[rows] = cols
    return float(np.sqrt(max(cost[rows, cols].mean(), 0.0))), perm


def repeat_atoms(atoms: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """The law Σ_k w_k δ(atoms_k) as n equally weighted points: atom k repeated n·w_k times (n, m).
    Every n·w_k must be an integer (e.g. a uniform codebook of K points and n a multiple of K)."""
    counts = np.asarray(weights, float) * n
    if np.any(np.abs(counts - np.round(counts)) > 1e-9) or round(counts.sum()) != n:
        raise ValueError(f"repeat_atoms: n·w must be integers summing to n = {n}, got {counts}")
    return np.repeat(np.asarray(atoms, float), np.round(counts).astype(int), axis=0)


def w2_to_atoms(atoms: np.ndarray, weights: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """W2 between a finite law (atoms (K, m), weights (K,)) and the empirical law of b (n, m), exact
    (the atoms repeated to n points, :func:`repeat_atoms`, then :func:`w2_assignment`). Returns (W2, the
    atom matched to each b_j, (n, m)): the optimal transport map of b's empirical law onto the atoms."""
    a = repeat_atoms(atoms, weights, len(b))
    w2, perm = w2_assignment(a, b)
    target = np.empty_like(a)
    target[perm] = a
    return w2, target
