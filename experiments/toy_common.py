"""Sources of the toy experiment: a manifold (or finite codebook) with what the bound needs.

A ``ToySource`` knows how to sample, the exact distance of a point to its support, the exact
(or upper-bounded) P_max(δ) with ball centres anywhere, the paper's constant C and dimension d,
and how many complex channel symbols it is sent with.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.neighbors import NearestNeighbors

from theory.covering import asymptotic_constant, discrete_pmax_upper, sphere_pmax
from theory.manifolds import Sphere, fibonacci_sphere


@dataclass
class ToySource:
    name: str
    d: int
    m: int
    n_symbols: int
    C: float                                  # the paper's constant (Vol/ω_d, or 4 for S² points)
    sample: Callable[[int, int], np.ndarray]  # (n, seed) -> (n, m)
    distance: Callable[[np.ndarray], np.ndarray]
    pmax: Callable[[float], float]            # P_max(δ), centres anywhere (exact or an upper bound)
    diameter: float
    points: np.ndarray | None = None          # the codebook for discrete sources


def sphere_source(d: int, m: int, n_symbols: int, seed: int = 0) -> ToySource:
    man = Sphere(d, m, seed=seed)
    return ToySource(man.name, d, m, n_symbols, asymptotic_constant(man), man.sample,
                     man.distance, lambda e: float(sphere_pmax(e, d, centres="anywhere")), 2.0)


def codebook_source(k: int, n_symbols: int) -> ToySource:
    """X uniform on k Fibonacci points of the unit S² ⊂ R³ (C = 4, d = 2 as in THEORY.md)."""
    pts = fibonacci_sphere(k)
    nn = NearestNeighbors(n_neighbors=1).fit(pts)

    def sample(n, seed):
        return pts[np.random.default_rng(seed).integers(0, k, n)]

    def distance(x):
        return nn.kneighbors(np.asarray(x, float))[0][:, 0]

    return ToySource(f"codebook{k}_S2", 2, 3, n_symbols, 4.0, sample, distance,
                     lambda e: float(discrete_pmax_upper(pts, e)[0]), 2.0, pts)


def default_sources() -> list[ToySource]:
    return [sphere_source(1, 2, 1), sphere_source(2, 3, 2), sphere_source(4, 6, 3),
            codebook_source(16, 2)]
