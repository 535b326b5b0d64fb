"""Manifolds of known intrinsic dimension d embedded in R^m (m > d), with uniform sampling by
volume and the exact Euclidean distance of any point of R^m to the manifold.

Each manifold is embedded isometrically: its natural coordinates in R^k (k ≤ m) are padded
with zeros and turned by a fixed random rotation Q (seeded), x = Q [u; 0]. So distances are
those of the natural embedding, and no coordinate axis is special.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gamma

__all__ = ["Sphere", "FlatTorus", "SwissRoll", "fibonacci_sphere", "ball_volume"]


def ball_volume(d: int) -> float:
    """ω_d = π^(d/2) / Γ(d/2 + 1), the volume of the unit d-ball."""
    return math.pi ** (d / 2) / gamma(d / 2 + 1)


def _rotation(m: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((m, m)))
    return q * np.sign(np.diag(r))


@dataclass
class _Embedded:
    d: int
    m: int
    seed: int = 0
    Q: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if self.m < self.k:
            raise ValueError(f"{type(self).__name__}: ambient m={self.m} must be >= {self.k}")
        self.Q = _rotation(self.m, self.seed)

    @property
    def k(self) -> int:
        raise NotImplementedError

    def embed(self, u: np.ndarray) -> np.ndarray:
        """Natural coordinates (N, k) -> points (N, m)."""
        pad = np.zeros((u.shape[0], self.m - self.k))
        return np.concatenate([u, pad], axis=1) @ self.Q.T

    def unembed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, m) -> (natural part (N, k), orthogonal remainder (N, m - k))."""
        z = np.asarray(x, float) @ self.Q
        return z[:, :self.k], z[:, self.k:]


@dataclass
class Sphere(_Embedded):
    """S^d of radius r in R^(d+1) ⊂ R^m. Vol = 2 π^((d+1)/2) r^d / Γ((d+1)/2)."""
    radius: float = 1.0

    @property
    def k(self):
        return self.d + 1

    @property
    def name(self):
        return f"S{self.d}"

    def volume(self) -> float:
        return 2 * math.pi ** ((self.d + 1) / 2) * self.radius ** self.d / gamma((self.d + 1) / 2)

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        g = np.random.default_rng(seed).standard_normal((n, self.k))
        return self.embed(self.radius * g / np.linalg.norm(g, axis=1, keepdims=True))

    def distance(self, x: np.ndarray) -> np.ndarray:
        u, w = self.unembed(x)
        return np.sqrt((np.linalg.norm(u, axis=1) - self.radius) ** 2 + (w ** 2).sum(1))


@dataclass
class FlatTorus(_Embedded):
    """Flat T^d = product of d circles of radius r in R^(2d) ⊂ R^m. Vol = (2 π r)^d."""
    radius: float = 1.0

    @property
    def k(self):
        return 2 * self.d

    @property
    def name(self):
        return f"T{self.d}"

    def volume(self) -> float:
        return (2 * math.pi * self.radius) ** self.d

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        phi = np.random.default_rng(seed).uniform(0, 2 * math.pi, (n, self.d))
        u = self.radius * np.stack([np.cos(phi), np.sin(phi)], axis=2).reshape(n, self.k)
        return self.embed(u)

    def distance(self, x: np.ndarray) -> np.ndarray:
        u, w = self.unembed(x)
        radial = np.linalg.norm(u.reshape(len(u), self.d, 2), axis=2) - self.radius
        return np.sqrt((radial ** 2).sum(1) + (w ** 2).sum(1))


@dataclass
class SwissRoll(_Embedded):
    """2-D swiss roll (t cos t, y, t sin t)/scale, t ∈ [t0, t1], y ∈ [0, height], in R^3 ⊂ R^m.
    Uniform by area: t has density ∝ sqrt(1 + t²) (arc length). Distance: numerical."""
    d: int = 2
    m: int = 3
    t0: float = 1.5 * math.pi
    t1: float = 4.5 * math.pi
    height: float = 10.0
    scale: float = 10.0

    @property
    def k(self):
        return 3

    @property
    def name(self):
        return "swiss_roll"

    def _arc(self, t):
        return 0.5 * (t * np.sqrt(1 + t * t) + np.arcsinh(t))

    def volume(self) -> float:
        return (self._arc(self.t1) - self._arc(self.t0)) * self.height / self.scale ** 2

    def _point(self, t, y):
        return np.stack([t * np.cos(t), y, t * np.sin(t)], axis=-1) / self.scale

    def sample(self, n: int, seed: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(seed)
        grid = np.linspace(self.t0, self.t1, 20001)
        s = self._arc(grid)
        t = np.interp(rng.uniform(s[0], s[-1], n), s, grid)  # inverse CDF of arc length
        return self.embed(self._point(t, rng.uniform(0, self.height, n)))

    def distance(self, x: np.ndarray, grid: int = 4001) -> np.ndarray:
        """Exact up to a dense t-grid plus golden-section refinement of the best bracket."""
        u, w = self.unembed(x)
        y = np.clip(u[:, 1] * self.scale, 0, self.height)
        ts = np.linspace(self.t0, self.t1, grid)

        def sq(t):  # squared distance in the (x, z) plane as a function of t, (N, ...) broadcast
            return ((t * np.cos(t) / self.scale - u[:, :1]) ** 2
                    + (t * np.sin(t) / self.scale - u[:, 2:3]) ** 2)

        best = ts[np.argmin(sq(ts[None, :]), axis=1)]
        step = ts[1] - ts[0]
        lo, hi = np.maximum(best - step, self.t0), np.minimum(best + step, self.t1)
        r = (math.sqrt(5) - 1) / 2
        for _ in range(60):
            a, b = hi - r * (hi - lo), lo + r * (hi - lo)
            left = sq(a[:, None])[:, 0] < sq(b[:, None])[:, 0]
            hi, lo = np.where(left, b, hi), np.where(left, lo, a)
        t = 0.5 * (lo + hi)
        plane = sq(t[:, None])[:, 0]
        dy = (u[:, 1] * self.scale - y) / self.scale
        return np.sqrt(plane + dy ** 2 + (w ** 2).sum(1))


def fibonacci_sphere(n: int) -> np.ndarray:
    """n well-spread points on the unit S² (the golden-angle spiral): (n, 3)."""
    if n < 1:
        raise ValueError(f"fibonacci_sphere: n must be positive, got {n}")
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + math.sqrt(5)) * i
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
