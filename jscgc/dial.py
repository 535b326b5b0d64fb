"""What the distortion–perception dial adds to a reception: the average of N samples and their diversity
(docs/theory.md, 'The distortion–perception frontier').

The operating point itself is :class:`jscgc.types.Dial`, passed to every ``System.receive``; a system draws
its N samples (computing μ(ŷ) once) and averages them. This module measures what the N draws say about
the posterior: their per-ŷ diversity (mean pairwise squared distance, :func:`average_and_diversity`).
"""
from __future__ import annotations

import torch

from jscgc.types import Reception

__all__ = ["average_and_diversity", "diversity"]


def average_and_diversity(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The mean of N samples (N, B, *S) -> (B, *S), and their diversity (B,): the mean over the N(N−1)/2
    pairs of ‖s_i − s_j‖² / D (D = the elements of one sample), computed as 2/(N − 1) · Σ_i ‖s_i − s̄‖² / D
    (Σ_{i<j} ‖s_i − s_j‖² = N Σ_i ‖s_i − s̄‖²). For i.i.d. draws from p(x | ŷ) its expectation is
    2 tr Cov(X | ŷ) / D. None when N = 1."""
    n = samples.shape[0]
    mean = samples.mean(0)
    if n < 2:
        return mean, None
    spread = (samples - mean).pow(2).flatten(2).sum(0).mean(-1)          # Σ_i ‖s_i − s̄‖² / D, (B,)
    return mean, 2.0 * spread / (n - 1)


def diversity(reception: Reception) -> torch.Tensor | None:
    """The per-ŷ diversity (B,) of a reception's N samples (:func:`average_and_diversity`); None for N = 1."""
    return average_and_diversity(reception.samples)[1]
