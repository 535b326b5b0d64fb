"""Intrinsic-dimension estimators with a scikit-learn-like ``fit(X) -> self`` interface that
sets ``dimension_``. Neighbours come from scikit-learn."""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors


class LevinaBickel:
    """Levina & Bickel (2004) MLE, averaged over k in [k1, k2], pooled with the harmonic mean
    1 / mean(1 / m̂(x)) (MacKay & Ghahramani's correction)."""

    def __init__(self, k1: int = 10, k2: int = 20):
        if not 2 <= k1 <= k2:
            raise ValueError(f"LevinaBickel: need 2 <= k1 <= k2, got k1={k1}, k2={k2}")
        self.k1, self.k2 = k1, k2

    def fit(self, X):
        X = np.asarray(X, float)
        dist, _ = NearestNeighbors(n_neighbors=self.k2 + 1).fit(X).kneighbors(X)
        logd = np.log(np.maximum(dist[:, 1:], 1e-300))  # drop the point itself
        estimates = []
        for k in range(self.k1, self.k2 + 1):
            inv = (logd[:, k - 1:k] - logd[:, :k - 1]).sum(1) / (k - 1)  # 1 / m̂_k(x)
            estimates.append(1.0 / np.mean(inv))
        self.dimension_ = float(np.mean(estimates))
        return self


class TwoNN:
    """Facco et al. (2017): μ = r2 / r1 is Pareto(d) on a d-manifold; MLE d̂ = (N − 1) / Σ log μ."""

    def __init__(self, discard_fraction: float = 0.0):
        self.discard_fraction = discard_fraction

    def fit(self, X):
        X = np.asarray(X, float)
        dist, _ = NearestNeighbors(n_neighbors=3).fit(X).kneighbors(X)
        mu = np.sort(dist[:, 2] / np.maximum(dist[:, 1], 1e-300))
        mu = mu[: int(len(mu) * (1 - self.discard_fraction))]
        self.dimension_ = float((len(mu) - 1) / np.log(mu).sum())
        return self
