"""theory.bayes: the Bayes-optimal references against closed forms, exact quadrature and their own
optimality (docs/theory.md, 'The Bayes-optimal references')."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import chisquare

from theory.bayes import (codebook_posterior, gaussian_loglik, mean_and_se, resample, sliced_wasserstein,
                          sphere_exp_map, sphere_log_map, sphere_posterior, summarise_posterior)
from theory.bayes import _log_tangent_density, _tangent_basis
from theory.manifolds import fibonacci_sphere

K, SIGMA = 16, 0.45


@pytest.fixture(scope="module")
def codebook():
    """16 Fibonacci points on S², a fixed random code in R⁴ (unit power), ŷ = c + σ Z: posteriors that
    are neither flat nor point masses."""
    rng = np.random.default_rng(0)
    points = fibonacci_sphere(K)
    codes = np.tanh(points @ rng.standard_normal((3, 4)))
    codes /= np.sqrt(np.mean(np.sum(codes ** 2, axis=1)))
    idx = rng.integers(0, K, 20000)
    y = codes[idx] + SIGMA * rng.standard_normal((len(idx), 4))
    post = codebook_posterior(y, codes, points, SIGMA, 3, np.random.default_rng(1))
    return points, codes, idx, y, post


def _knn_decoder(codes, points, rng, n_train=20000, k=25):
    """A decoder learned from (ŷ, x) pairs: the k-nearest-neighbour regression of x on ŷ."""
    from sklearn.neighbors import KNeighborsRegressor

    idx = rng.integers(0, K, n_train)
    y = codes[idx] + SIGMA * rng.standard_normal((n_train, codes.shape[1]))
    return KNeighborsRegressor(k).fit(y, points[idx])


def test_a_learned_mse_decoder_is_never_below_the_exact_mmse(codebook):
    """A learned decoder g must have E‖g(Ŷ) − X‖² ≥ MMSE = E tr Cov(X | Ŷ); checked on the paired
    differences ‖g(ŷ) − x‖² − tr Cov(X | ŷ) within 3 standard errors. Kills an MMSE that is too large
    (e.g. Σ w ‖x − μ‖² computed with a wrong μ, or without normalising the weights)."""
    points, codes, idx, y, post = codebook
    g = _knn_decoder(codes, points, np.random.default_rng(5)).predict(y)
    diff, se = mean_and_se(np.sum((g - points[idx]) ** 2, axis=1) - post.var)
    assert diff >= -3 * se
    assert diff > 0  # and a 25-NN decoder is visibly worse than E[X | ŷ]


def test_the_posterior_mean_attains_the_mmse_and_map_minimises_the_error_rate(codebook):
    """E‖μ(Ŷ) − X‖² = E tr Cov(X | Ŷ) within 4 SE (kills a too-small MMSE), and MAP's error rate is at
    most that of the nearest-codeword decoder (ML = MAP for a uniform prior, so equal here)."""
    points, codes, idx, y, post = codebook
    diff, se = mean_and_se(np.sum((post.mean - points[idx]) ** 2, axis=1) - post.var)
    assert abs(diff) <= 4 * se
    nearest = np.argmin(((y[:, None, :] - codes[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(post.mode, points[nearest])


def test_the_exact_sampler_has_twice_the_mmse(codebook):
    """(B2): X̂ ~ p(x | ŷ) and X are i.i.d. given Ŷ, so E‖X̂ − X‖² = 2 · MMSE (three independent
    draws per ŷ, each within 4 SE)."""
    points, _, idx, _, post = codebook
    mmse = post.var.mean()
    for j in range(post.samples.shape[1]):
        diff, se = mean_and_se(np.sum((post.samples[:, j] - points[idx]) ** 2, axis=1) - 2 * post.var)
        assert abs(diff) <= 4 * se, (j, diff, se, mmse)


def test_snis_on_prior_draws_of_the_codebook_converges_to_the_exact_posterior(codebook):
    """The codebook treated as a continuous prior known only by samples: SNIS with M prior draws
    (shared by every ŷ, as in ``sphere_posterior``) estimates μ(ŷ) with the error its delta-method SE
    predicts (averaged over 24 independent pools), shrinking like 1/√M."""
    points, codes, _, y, post = codebook
    y, exact = y[:100], post.mean[:100]
    rmse = []
    for m in (256, 4096):
        err2, se2, inside = [], [], []
        for r in range(24):
            draw = np.random.default_rng(1000 * m + r).integers(0, K, m)
            est = summarise_posterior(gaussian_loglik(y, codes[draw], SIGMA), (points[draw],), 1,
                                      np.random.default_rng(r))
            err = np.linalg.norm(est.mean - exact, axis=1)
            err2.append(err ** 2), se2.append(est.mean_se ** 2), inside.append(err <= 4 * est.mean_se + 1e-12)
        assert np.mean(inside) >= 0.97
        assert math.sqrt(np.mean(err2)) == pytest.approx(math.sqrt(np.mean(se2)), rel=0.2)
        rmse.append(math.sqrt(np.mean(err2)))
    assert rmse[1] < rmse[0] / 3  # ≈ 1/4 for a 16-fold larger M


def _circle_code(u):
    """A folded code map of S¹ into R⁴ (two turns plus one): posteriors with several modes at low SNR."""
    t = np.arctan2(u[:, 1], u[:, 0])
    return 1.2 * np.stack([np.cos(3 * t), np.sin(3 * t), 0.5 * np.cos(t), 0.5 * np.sin(t)], axis=1)


@pytest.mark.parametrize("sigma", [0.5, 0.1, 0.01])
def test_sphere_posterior_matches_quadrature_on_the_circle(sigma):
    """S¹: the posterior of a uniform angle is a 1-D integral, done on 200 000 grid points. The
    adaptive SNIS mean is within 4 of its own SEs of it for ≥ 97% of ŷ, its MMSE within 3%."""
    rng = np.random.default_rng(3)
    tt = np.linspace(0, 2 * np.pi, 200_000, endpoint=False)
    grid = np.stack([np.cos(tt), np.sin(tt)], axis=1)
    t = rng.uniform(0, 2 * np.pi, 150)
    x = np.stack([np.cos(t), np.sin(t)], axis=1)
    y = _circle_code(x) + sigma * rng.standard_normal((150, 4))
    exact = summarise_posterior(gaussian_loglik(y, _circle_code(grid), sigma), (grid,), 1, rng)

    def prior(k):
        g = rng.standard_normal((k, 2))
        return g / np.linalg.norm(g, axis=1, keepdims=True)
    post = sphere_posterior(y, sigma, _circle_code, prior, 1, 1, rng, pool=1024, local=128)
    err = np.linalg.norm(post.mean - exact.mean, axis=1)
    assert np.mean(err <= 4 * post.mean_se) >= 0.97
    assert post.var.mean() == pytest.approx(exact.var.mean(), rel=0.03)
    assert np.median(post.ess) > 50


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(0, 10_000), st.floats(0.01, 3.0))
def test_tangent_maps_invert_each_other_and_measure_angles(d, seed, scale):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((3, d + 1))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    basis = _tangent_basis(c)
    np.testing.assert_allclose(np.einsum("np,npd->nd", c, basis), 0, atol=1e-12)
    np.testing.assert_allclose(basis.transpose(0, 2, 1) @ basis, np.broadcast_to(np.eye(d), (3, d, d)), atol=1e-12)
    t = rng.standard_normal((3, 5, d))
    t *= np.minimum(scale, 3.0) / np.linalg.norm(t, axis=-1, keepdims=True)      # ‖t‖ < π
    x = sphere_exp_map(t, c, basis)
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1, atol=1e-12)
    np.testing.assert_allclose(np.arccos(np.clip(np.einsum("nkp,np->nk", x, c), -1, 1)),
                               np.linalg.norm(t, axis=-1), atol=1e-6)
    np.testing.assert_allclose(sphere_log_map(x, c, basis), t, atol=1e-6)


@pytest.mark.parametrize("d", [1, 2, 4])
def test_tangent_gaussian_density_integrates_to_one_on_the_sphere(d):
    """∫ q dS = Vol(S^d) · E_uniform[q(X)] = 1 for the density of exp_c(t), t ~ N(0, S): checks the
    Jacobian (r / sin r)^(d−1) of the exp map."""
    rng = np.random.default_rng(d)
    c = np.eye(d + 1)[:1]
    chol = np.linalg.cholesky(np.diag(np.linspace(0.2, 0.4, d)) ** 2)[None]
    g = rng.standard_normal((1, 400_000, d + 1))
    x = g / np.linalg.norm(g, axis=-1, keepdims=True)
    vol = 2 * math.pi ** ((d + 1) / 2) / math.gamma((d + 1) / 2)
    q = np.exp(_log_tangent_density(x, (c, _tangent_basis(c), chol)))
    assert vol * q.mean() == pytest.approx(1.0, abs=5 * vol * q.std() / math.sqrt(q.size) + 1e-3)


def test_resample_draws_indices_with_the_given_probabilities():
    w = np.random.default_rng(0).dirichlet(np.ones(6), size=4)
    idx = resample(w, 60_000, np.random.default_rng(1))
    for row, p in zip(idx, w):
        assert chisquare(np.bincount(row, minlength=6), 60_000 * p).pvalue > 1e-4


def test_sliced_wasserstein_of_a_translation_is_its_length_over_root_m():
    """Per direction θ the projections shift by θ·v, so SW₂² = E(θ·v)² = ‖v‖²/m; and SW₂(a, a) = 0."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 50, 3))
    v = np.array([0.3, -0.4, 1.2])
    sw = sliced_wasserstein(a + v, a, 20_000, rng)
    np.testing.assert_allclose(sw, np.linalg.norm(v) / math.sqrt(3), rtol=0.02)
    np.testing.assert_allclose(sliced_wasserstein(a, a, 10, rng), 0, atol=1e-12)
