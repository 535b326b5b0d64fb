"""The distortion–perception frontier (theory.frontier) against the exact codebook posterior:
the frontier's end points are reached by explicit estimators, the posterior sampler sits at P ≈ 0 with
D ≈ 2·MMSE, and averaging N exact posterior samples gives (1 + 1/N)·MMSE (through jscgc.dial's averaging)."""
import numpy as np
import pytest
import torch

from jscgc.dial import average_and_diversity
from theory.bayes import codebook_posterior
from theory.frontier import frontier, repeat_atoms, w2_assignment, w2_to_atoms
from theory.manifolds import fibonacci_sphere
from theory.tasks import awgn_sigma

K, N_Y = 16, 3200


@pytest.fixture(scope="module")
def codebook():
    """16 points on S², a random 2-use code of unit power, 0 dB: an uncertain posterior (MMSE well above 0)."""
    rng = np.random.default_rng(0)
    points = fibonacci_sphere(K)
    codes = rng.standard_normal((K, 4))
    codes *= np.sqrt(0.5 / np.mean(codes ** 2))            # 1/2 per real component = 1 per complex use
    idx = rng.integers(0, K, N_Y)
    sigma = awgn_sigma(0.0)
    y = codes[idx] + sigma * rng.standard_normal((N_Y, 4))
    post = codebook_posterior(y, codes, points, sigma, 8, rng)
    return points, points[idx], post


def test_frontier_closed_form():
    p = np.linspace(0, 2, 9)
    d = frontier(0.3, 1.0, p)
    assert frontier(0.3, 1.0, 1.0) == 0.3 and frontier(0.3, 1.0, 0.0) == pytest.approx(1.3)
    assert np.all(np.diff(d) <= 0) and np.all(d[p >= 1.0] == 0.3)
    with pytest.raises(ValueError, match="mmse >= 0"):
        frontier(-1.0, 1.0, 0.0)


def test_w2_assignment_known_answers():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert w2_assignment(a, a[::-1])[0] == 0.0                       # same law, other order
    assert w2_assignment(a, a + [0.0, 2.0])[0] == pytest.approx(2.0)  # a translation by 2
    pts = np.eye(3)
    with pytest.raises(ValueError, match="integers"):
        repeat_atoms(pts, np.full(3, 1 / 3), 10)
    w2, target = w2_to_atoms(pts, np.full(3, 1 / 3), repeat_atoms(pts, np.full(3, 1 / 3), 6)[::-1] + 0.1)
    assert w2 == pytest.approx(np.sqrt(3 * 0.01)) and np.allclose(target, repeat_atoms(pts, np.full(3, 1 / 3), 6)[::-1])


def test_frontier_at_w2_star_is_the_mmse_and_its_zero_end_is_reached_by_transport(codebook):
    points, x, post = codebook
    mmse = post.var.mean()                                            # exact: E tr Cov(X | ŷ)
    assert 0.2 < mmse < 1.5
    assert np.mean(np.sum((x - post.mean) ** 2, 1)) == pytest.approx(mmse, rel=0.05)   # D(X*) = D*
    w2_star, transported = w2_to_atoms(points, np.full(K, 1 / K), post.mean)
    assert frontier(mmse, w2_star, w2_star) == mmse
    # T(X*), the transport of X*'s law onto the source's: P = 0 exactly, D = D* + W2*² (F1 at P = 0)
    assert w2_to_atoms(points, np.full(K, 1 / K), transported)[0] == pytest.approx(0.0, abs=1e-6)
    d_transport = np.mean(np.sum((x - transported) ** 2, 1))
    assert d_transport == pytest.approx(frontier(mmse, w2_star, 0.0), rel=0.05)
    assert d_transport > mmse + 0.5 * w2_star ** 2                   # and not merely the MMSE


def test_the_exact_posterior_sampler_has_p_near_zero_and_twice_the_mmse(codebook):
    points, x, post = codebook
    mmse = post.var.mean()
    w2_star = w2_to_atoms(points, np.full(K, 1 / K), post.mean)[0]
    sample = post.samples[:, 0]
    p_sampler = w2_to_atoms(points, np.full(K, 1 / K), sample)[0]
    floor = w2_to_atoms(points, np.full(K, 1 / K), x)[0]             # the source's own draws: sampling noise only
    assert p_sampler < 1.5 * floor and floor < 0.35 * w2_star          # P ≈ 0 up to the empirical frequencies
    assert np.mean(np.sum((x - sample) ** 2, 1)) == pytest.approx(2 * mmse, rel=0.05)
    assert 2 * mmse > frontier(mmse, w2_star, 0.0)                    # Blau–Michaeli: not optimal at P = 0


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_averaging_n_exact_samples_gives_one_plus_one_over_n_mmse(codebook, n):
    points, x, post = codebook
    mmse = post.var.mean()
    draws = torch.as_tensor(post.samples[:, :n]).transpose(0, 1)     # (N, ŷ, m), as jscgc.dial stacks them
    mean, diversity = average_and_diversity(draws)
    mse = np.mean(np.sum((x - mean.numpy()) ** 2, 1))
    assert mse == pytest.approx((1 + 1 / n) * mmse, rel=0.05)
    if n > 1:                                                         # per element: 2 tr Cov / m
        assert diversity.mean().item() == pytest.approx(2 * mmse / 3, rel=0.05)
