"""Covering numbers K(ε) = 1 / P_max(ε) (the probability convention of ``theory.bound``),
greedy ε-nets, and the fit of C and d from log K vs −log ε.

Distances are Euclidean (chordal) in the ambient space. ``centres="manifold"`` puts ball
centres on the manifold; ``centres="anywhere"`` allows any centre in R^m, which is what a
decoder that leaves the manifold (an MSE decoder) needs (docs/theory.md, '7. Decoders that leave
the manifold').
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import betainc

from theory.manifolds import FlatTorus, Sphere, ball_volume


def sphere_pmax(eps, d: int, radius: float = 1.0, centres: str = "manifold"):
    """P_max(ε) of the uniform law on S^d of radius r, exact.

    On-manifold centre: the chordal ball is the cap of angle θ = 2 arcsin(ε / 2r), with area
    fraction ½ I_{sin²θ}(d/2, ½) for θ ≤ π/2 (one minus that beyond). Centre anywhere: the best
    centre lies at distance sqrt(r² − ε²) from the origin and catches the cap of angle
    arcsin(ε / r) for ε < r; for ε ≥ r a ball at the origin holds the whole sphere.
    """
    eps = np.asarray(eps, float) / radius
    if centres == "manifold":
        theta = 2 * np.arcsin(np.clip(eps / 2, 0, 1))
    elif centres == "anywhere":
        theta = np.where(eps < 1, np.arcsin(np.clip(eps, 0, 1)), math.pi)
    else:
        raise ValueError(f"centres: 'manifold' or 'anywhere', got {centres!r}")
    half = 0.5 * betainc(d / 2, 0.5, np.sin(np.minimum(theta, math.pi / 2)) ** 2)
    return np.where(theta <= math.pi / 2, half, 1 - 0.5 * betainc(d / 2, 0.5, np.sin(theta) ** 2))


def torus_pmax(eps, d: int, radius: float = 1.0, grid: int | None = None):
    """P_max(ε) of the uniform law on the flat T^d (product of circles), centre on the manifold.

    Each circle adds a chord² c² = 4 r² sin²(φ/2), φ uniform on [0, π] (by symmetry);
    P(c² ≤ a) = (2/π) arcsin(√a / 2r). The d-fold sum's CDF is built recursively,
    P_k(a) = (1/π) ∫_0^{φ_a} P_{k−1}(a − c(φ)²) dφ with φ_a = 2 arcsin(√a / 2r), by the midpoint
    rule on the support [0, φ_a] so that small ε is resolved (homogeneous: any centre on the
    torus is as good as another).
    """
    eps = np.atleast_1d(np.asarray(eps, float))
    grid = grid or (4000 if d <= 2 else 300)
    u = (np.arange(grid) + 0.5) / grid

    def phi_max(a):
        return 2 * np.arcsin(np.sqrt(np.clip(a, 0, 4 * radius ** 2)) / (2 * radius))

    def cdf(a, k):
        if k == 1:
            return phi_max(a) / math.pi
        pm = phi_max(a)
        phi = pm[..., None] * u
        inner = cdf(a[..., None] - 4 * radius ** 2 * np.sin(phi / 2) ** 2, k - 1)
        return pm / math.pi * inner.mean(-1)

    return cdf(eps ** 2, d)


def greedy_net_count(points: np.ndarray, eps: float, seed: int = 0) -> int:
    """Size of a greedy ε-net of a point cloud: centres are > ε apart and every point is within
    ε of one, so N_cov(ε) ≤ count ≤ M(ε) ≤ 1 / P_max(ε/2) when the cloud is dense."""
    if eps <= 0:
        raise ValueError(f"greedy_net_count: eps must be positive, got {eps}")
    from sklearn.neighbors import KDTree  # imported here: the toy runner does not need scikit-learn
    tree = KDTree(points)
    covered = np.zeros(len(points), bool)
    count = 0
    for i in np.random.default_rng(seed).permutation(len(points)):
        if covered[i]:
            continue
        count += 1
        covered[tree.query_radius(points[i:i + 1], r=eps)[0]] = True
    return count


def fit_dimension_constant(eps: np.ndarray, counts: np.ndarray, n_points: int | None = None):
    """Least-squares fit of log K = log C + d · (−log ε). Keeps only counts in
    [50, n_points / 50] when n_points is given (too coarse and too fine scales are biased).
    Returns (d, C)."""
    eps, counts = np.asarray(eps, float), np.asarray(counts, float)
    keep = counts > 0
    if n_points is not None:
        keep &= (counts >= 50) & (counts <= n_points / 50)
    if keep.sum() < 2:
        raise ValueError("fit_dimension_constant: fewer than two usable scales")
    slope, intercept = np.polyfit(-np.log(eps[keep]), np.log(counts[keep]), 1)
    return float(slope), float(math.exp(intercept))


def asymptotic_constant(manifold) -> float:
    """C = Vol(M) / ω_d: the small-ε limit of K(ε) ε^d for X uniform on M."""
    return manifold.volume() / ball_volume(manifold.d)


def envelope_constant(pmax, d: int, delta_max: float, n: int = 4000) -> float:
    """The largest C with C δ^(−d) ≤ 1/P_max(δ) for all δ in (0, delta_max]: min of K(δ) δ^d on a
    fine grid. With this C, ``delta_star_rigorous`` is a valid lower bound below delta_max."""
    grid = np.geomspace(delta_max * 1e-4, delta_max, n)
    return float(np.min(grid ** d / np.asarray(pmax(grid))))


def pmax_for(manifold, centres: str = "manifold"):
    """The exact P_max(ε) function of a manifold where one is known."""
    if isinstance(manifold, Sphere):
        return lambda e: sphere_pmax(e, manifold.d, manifold.radius, centres)
    if isinstance(manifold, FlatTorus) and centres == "manifold":
        return lambda e: torus_pmax(e, manifold.d, manifold.radius)
    raise ValueError(f"pmax_for: no exact P_max for {type(manifold).__name__} with centres={centres!r}")


def sorted_distances(points: np.ndarray) -> np.ndarray:
    """Each point's Euclidean distances to all points of the set, ascending: (K, m) -> (K, K)."""
    p = np.asarray(points, float)
    return np.sort(np.sqrt(np.sum((p[:, None, :] - p[None, :, :]) ** 2, axis=-1)), axis=1)


def discrete_pmax_upper(points: np.ndarray, eps, dist: np.ndarray | None = None) -> np.ndarray:
    """An upper bound on P_max(ε) for X uniform on a finite set, centres anywhere: a ball of
    radius ε holding points lies inside the 2ε-ball around any one of them, so
    P_max(ε) ≤ max_i #{j : ‖x_i − x_j‖ ≤ 2ε} / K. ``dist``: ``sorted_distances(points)``, if already
    computed. Returns an array of eps's shape (at least 1-D)."""
    dist = sorted_distances(points) if dist is None else dist
    eps = np.atleast_1d(np.asarray(eps, float))
    counts = np.stack([np.searchsorted(row, 2 * eps.ravel(), side="right") for row in dist])
    return (counts.max(axis=0) / len(dist)).reshape(eps.shape)
