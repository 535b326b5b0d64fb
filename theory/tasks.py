"""Sources of known dimension for checking Theorem 1: a manifold (or finite codebook) together with
everything the bound needs, and the negative control the published formula fails.

A ``ToySource`` knows how to sample, the exact distance of a point to its support, the exact
(or upper-bounded) P_max(δ) with ball centres anywhere, the paper's constant C and dimension d,
and how many complex channel symbols it is sent with; ``posterior`` gives the exact (codebook) or
SNIS (sphere) posterior of a source given ŷ for a known code map, for the Bayes-optimal references. ``map_control`` is docs/theory.md,
'The negative control': 16 points on S² sent with a biorthogonal code and decoded exactly (MAP),
so δ_emp = 0 while the paper's δ* is positive.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from theory.bayes import PosteriorSummary, codebook_posterior, sphere_posterior
from theory.covering import asymptotic_constant, discrete_pmax_upper, sorted_distances, sphere_pmax
from theory.manifolds import Sphere, fibonacci_sphere

__all__ = ["ToySource", "sphere_source", "codebook_source", "default_sources", "awgn_sigma",
           "MapControl", "map_control", "posterior"]


@dataclass
class ToySource:
    name: str
    d: int
    m: int
    n_symbols: int
    C: float                                  # the paper's constant (Vol/ω_d, or 4 for S² points)
    sample: Callable[[int, int], np.ndarray]  # (n, seed) -> (n, m)
    distance: Callable[[np.ndarray], np.ndarray]
    pmax: Callable                            # P_max(δ), centres anywhere (exact or an upper bound);
    #                                           a float for a float, an array for an array of δ
    diameter: float
    points: np.ndarray | None = None          # the codebook for discrete sources
    sphere: Sphere | None = None              # the unit sphere of a sphere source (its embedding)


def _float_for_scalar(f: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """Wrap a vectorised f so that a scalar argument gives a float and an array one an array."""
    def g(e):
        out = f(np.asarray(e, float))
        return float(np.reshape(out, -1)[0]) if np.ndim(e) == 0 else np.reshape(out, np.shape(e))
    return g


def sphere_source(d: int, m: int, n_symbols: int, seed: int = 0) -> ToySource:
    """X uniform on the unit S^d ⊂ R^(d+1), turned into R^m; C = Vol(S^d)/ω_d, centres anywhere."""
    man = Sphere(d, m, seed=seed)
    return ToySource(man.name, d, m, n_symbols, asymptotic_constant(man), man.sample, man.distance,
                     _float_for_scalar(lambda e: sphere_pmax(e, d, centres="anywhere")), 2.0, sphere=man)


def codebook_source(k: int, n_symbols: int) -> ToySource:
    """X uniform on k Fibonacci points of the unit S² ⊂ R³ (C = 4, d = 2: the sphere's constant,
    as in docs/theory.md, 'The negative control'); P_max is the 2δ-ball upper bound."""
    pts = fibonacci_sphere(k)
    dist = sorted_distances(pts)

    def sample(n, seed):
        return pts[np.random.default_rng(seed).integers(0, k, n)]

    def distance(x):  # exact nearest-point distance, (N, 3) -> (N,)
        x = np.asarray(x, float)
        return np.sqrt(np.min(np.sum((x[:, None, :] - pts[None]) ** 2, axis=-1), axis=1))

    return ToySource(f"codebook{k}_S2", 2, 3, n_symbols, 4.0, sample, distance,
                     _float_for_scalar(lambda e: discrete_pmax_upper(pts, e, dist)), 2.0, pts)


def default_sources() -> list[ToySource]:
    """The toy experiment's sources: S¹ ⊂ R², S² ⊂ R³, S⁴ ⊂ R⁶ and 16 Fibonacci points on S²."""
    return [sphere_source(1, 2, 1), sphere_source(2, 3, 2), sphere_source(4, 6, 3),
            codebook_source(16, 2)]


def awgn_sigma(snr_db: float) -> float:
    """Noise standard deviation per real component for unit-power complex symbols at ``snr_db``:
    σ = √(10^(−SNR/10) / 2)."""
    return math.sqrt(10 ** (-snr_db / 10) / 2)


def posterior(src: ToySource, y: np.ndarray, sigma: float, encode: Callable[[np.ndarray], np.ndarray],
              n_samples: int, rng: np.random.Generator) -> PosteriorSummary:
    """The posterior of the source given ŷ (N, D) over Y = f(X) + σ Z, f = ``encode`` ((K, m) -> (K, D)),
    in the source's coordinates (docs/theory.md, 'The Bayes-optimal references'): exact over the
    codebook of a discrete source, by SNIS on the sphere of a sphere source (``theory.bayes``)."""
    if src.points is not None:
        return codebook_posterior(y, encode(src.points), src.points, sigma, n_samples, rng)
    if src.sphere is None or src.sphere.radius != 1.0:
        raise ValueError(f"posterior: source {src.name} is neither a codebook nor a unit sphere")
    sph = src.sphere

    def sample_prior(k: int) -> np.ndarray:
        return sph.unembed(sph.sample(k, int(rng.integers(2 ** 62))))[0]

    post = sphere_posterior(y, sigma, lambda u: encode(sph.embed(u)), sample_prior, src.d, n_samples, rng)
    samples = sph.embed(post.samples.reshape(-1, src.d + 1)).reshape(*post.samples.shape[:2], src.m)
    return post._replace(mean=sph.embed(post.mean), mode=sph.embed(post.mode), samples=samples)


class MapControl(NamedTuple):
    """One run of the negative control: the source, the code (rows = codewords, real uses), the
    channel, the decoded points and the reconstruction errors ‖x̂ − x‖."""
    source: ToySource
    code: np.ndarray
    snr_db: float
    sigma: float
    x_hat: np.ndarray
    err: np.ndarray


def map_control(seed: int = 0, n: int = 200_000) -> MapControl:
    """16 Fibonacci points on S², biorthogonal code on 8 real uses, 15 dB, exact MAP decoder."""
    src = codebook_source(16, 4)
    code = np.concatenate([2 * np.eye(8), -2 * np.eye(8)])  # average power 1 per complex use
    snr = 15.0
    sigma = awgn_sigma(snr)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 16, n)
    y = code[idx] + sigma * rng.standard_normal((n, 8))
    xh = src.points[np.argmax(y @ code.T, axis=1)]  # MAP for equal-energy codewords
    err = np.linalg.norm(xh - src.points[idx], axis=1)
    return MapControl(src, code, snr, sigma, xh, err)
