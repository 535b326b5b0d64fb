"""Data sources for the training loop: ``source(batch_size, generator) -> x0`` (CPU tensors).

Low-dimensional toy distributions live here; manifolds of known intrinsic dimension live in
``theory.manifolds`` and are turned into sources with :func:`manifold_source`.
"""
from __future__ import annotations

import math
import torch

from jscgc.types import DataSource


def ring(radius: float = 1.0) -> DataSource:
    """Uniform on the circle of ``radius`` in R^2: (B, 2)."""
    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        theta = 2 * math.pi * torch.rand(n, generator=generator)
        return radius * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    return sample


def gaussian(dim: int, std: float = 1.0) -> DataSource:
    """i.i.d. N(0, std^2) in R^dim: (B, dim)."""
    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        return std * torch.randn(n, dim, generator=generator)
    return sample


def manifold_source(manifold) -> DataSource:
    """Samples of anything with ``sample(n, seed) -> (n, m) array`` (a ``theory.manifolds``
    manifold, a toy source) as float32 tensors (B, m)."""
    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return torch.as_tensor(manifold.sample(n, seed), dtype=torch.float32)
    return sample
