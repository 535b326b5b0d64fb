"""Mutual information of a deterministic bit code c(X) of n bits over a memoryless binary channel, exact for
the empirical code distribution with a batch standard error, and the channels' capacities (bits):

  * ``bsc_code_mi`` — binary symmetric channel, bits flip independently with probability p;
  * ``bec_code_mi`` — binary erasure channel, bits erased independently with probability e;
  * ``bsc_capacity`` — n (1 − h(p)).
"""
from __future__ import annotations

import math

import numpy as np

from theory.bound import binary_entropy
from theory.mi import Estimate

__all__ = ["bsc_capacity", "bsc_code_mi", "bec_code_mi"]


def bsc_capacity(n_bits: int, p) -> np.ndarray:
    """Capacity of n uses of a BSC(p): n (1 − h(p)) bits."""
    return n_bits * (1.0 - binary_entropy(p))


def bsc_code_mi(codewords: np.ndarray, p: float, batches: int = 8) -> Estimate:
    """I(X; Ŷ) for a deterministic code c(X) of n bits sent over a BSC(p), from samples of c(X).

    I = H(Ŷ) − n h(p), with P(ŷ) = mean_x p^d(ŷ, c(x)) (1 − p)^(n − d(ŷ, c(x))) enumerated over the 2^n
    outputs (n ≤ 16). The standard error is that of the mean over ``batches`` disjoint parts.

    Args:
        codewords: (N, n) 0/1 codes of N samples of X.
        p: crossover probability.
    """
    c = np.asarray(codewords, dtype=np.int64)
    n = c.shape[1]
    if n > 16 or not np.isin(c, (0, 1)).all():
        raise ValueError(f"bsc_code_mi: expected (N, n <= 16) 0/1 codewords, got shape {c.shape}")
    outputs = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1                 # (2^n, n)

    def mi(part: np.ndarray) -> float:
        words, counts = np.unique(part, axis=0, return_counts=True)
        dist = (outputs[:, None, :] != words[None]).sum(-1)                        # (2^n, W)
        lik = p ** dist * (1 - p) ** (n - dist)
        p_y = lik @ (counts / counts.sum())
        h_y = -np.sum(p_y[p_y > 0] * np.log2(p_y[p_y > 0]))
        return float(h_y - n * binary_entropy(p))

    parts = [mi(part) for part in np.array_split(c, batches) if len(part)]
    return Estimate(mi(c), float(np.std(parts, ddof=1) / math.sqrt(len(parts))) if len(parts) > 1 else 0.0)


def bec_code_mi(codewords: np.ndarray, e: float, batches: int = 8) -> Estimate:
    """I(X; Ŷ) for a deterministic code c(X) of n bits sent over a BEC(e), from samples of c(X).

    The erasure pattern is independent of X, and given the set S of unerased positions Ŷ reveals c_S(X),
    so I = Σ_S (1 − e)^|S| e^(n − |S|) H(c_S(X)), summed over the 2^n sets (n ≤ 16) with the empirical
    entropy of the code restricted to S. Standard error as in :func:`bsc_code_mi`.

    Args:
        codewords: (N, n) 0/1 codes of N samples of X.
        e: erasure probability.
    """
    c = np.asarray(codewords, dtype=np.int64)
    n = c.shape[1]
    if n > 16 or not np.isin(c, (0, 1)).all():
        raise ValueError(f"bec_code_mi: expected (N, n <= 16) 0/1 codewords, got shape {c.shape}")
    masks = np.arange(2 ** n)
    kept = ((masks[:, None] >> np.arange(n)) & 1).sum(1)                         # |S| of each set
    weight = (1 - e) ** kept * e ** (n - kept)

    def mi(part: np.ndarray) -> float:
        words = part @ (1 << np.arange(n))                                         # (N,) integers
        h = np.empty(len(masks))
        for i, mask in enumerate(masks):
            _, counts = np.unique(words & mask, return_counts=True)
            q = counts / counts.sum()
            h[i] = -np.sum(q * np.log2(q))
        return float(weight @ h)

    parts = [mi(part) for part in np.array_split(c, batches) if len(part)]
    return Estimate(mi(c), float(np.std(parts, ddof=1) / math.sqrt(len(parts))) if len(parts) > 1 else 0.0)
