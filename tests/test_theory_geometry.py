"""Manifolds, covering numbers and intrinsic-dimension estimators against known answers."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from theory.covering import (asymptotic_constant, discrete_pmax_upper, envelope_constant,
                             fit_dimension_constant, greedy_net_count, sphere_pmax, torus_pmax)
from theory.dimension import LevinaBickel, TwoNN
from theory.manifolds import FlatTorus, Sphere, SwissRoll, fibonacci_sphere


@pytest.mark.parametrize("man", [Sphere(2, 5), Sphere(4, 7, radius=2.0), FlatTorus(2, 6),
                                 FlatTorus(3, 6, radius=0.5), SwissRoll(m=5)])
def test_samples_lie_on_manifold_and_distance_is_exact_off_it(man):
    x = man.sample(200, seed=1)
    assert man.distance(x).max() < 1e-6
    # step off along a direction orthogonal to the natural coordinates: distance = step
    if man.m > man.k:
        off = x + 0.3 * man.Q[:, man.k][None, :]
        np.testing.assert_allclose(man.distance(off), 0.3, atol=1e-6)


def test_sphere_radial_distance():
    s = Sphere(3, 4, radius=1.5)
    np.testing.assert_allclose(s.distance(2 * s.sample(50, 0)), 1.5, atol=1e-12)


def test_swiss_roll_distance_never_exceeds_a_sampled_point():
    roll = SwissRoll(m=3)
    pts, dense = roll.sample(100, 2) + 0.2, roll.sample(200000, 3)
    brute = np.array([np.linalg.norm(dense - p, axis=1).min() for p in pts])
    d = roll.distance(pts)
    assert np.all(d <= brute + 1e-9) and np.all(d >= brute - 0.02)


def test_fibonacci_points_spread():
    p = fibonacci_sphere(16)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0)
    dists = np.linalg.norm(p[:, None] - p[None], axis=-1) + 10 * np.eye(16)
    assert dists.min() > 0.7  # spread (Tammes optimum 0.88; 16 random points give ~0.2)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.02, 1.9))
def test_s2_pmax_closed_forms(eps):
    assert sphere_pmax(eps, 2) == pytest.approx(eps ** 2 / 4, rel=1e-9)  # K = 4/δ² exactly
    if eps < 1:
        assert 1 / sphere_pmax(eps, 2, centres="anywhere") == pytest.approx(
            2 / (1 - math.sqrt(1 - eps ** 2)), rel=1e-9)
    assert sphere_pmax(eps, 2, centres="anywhere") >= sphere_pmax(eps, 2) - 1e-12


@pytest.mark.parametrize("man,pmax", [(Sphere(3, 5), lambda e: sphere_pmax(e, 3)),
                                      (FlatTorus(2, 5), lambda e: torus_pmax(e, 2))])
def test_pmax_matches_monte_carlo(man, pmax):
    x, c = man.sample(200000, 1), man.sample(1, 2)
    for eps in (0.4, 0.9):
        mc = (np.linalg.norm(x - c, axis=1) <= eps).mean()
        assert abs(pmax(eps) - mc) < 5 * math.sqrt(mc * (1 - mc) / len(x)) + 1e-3


def test_asymptotic_constant_is_the_small_eps_limit():
    s = Sphere(2, 3)
    assert asymptotic_constant(s) == pytest.approx(4.0)
    e = 1e-3
    assert asymptotic_constant(FlatTorus(2, 4)) == pytest.approx(e ** 2 / torus_pmax(e, 2)[0], rel=1e-3)


def test_envelope_constant_is_a_valid_lower_envelope():
    pm = lambda e: sphere_pmax(e, 2, centres="anywhere")
    C = envelope_constant(pm, 2, 0.9)
    grid = np.linspace(0.01, 0.9, 500)
    assert np.all(C * grid ** -2.0 <= 1 / pm(grid) * (1 + 1e-9))
    assert 2.0 < C < 4.0  # K δ² runs from 4 (δ → 0) to 2/(1-√(1-0.81))·0.81 at δ = 0.9


@settings(max_examples=12, deadline=None)
@given(st.floats(0.15, 0.6))
def test_greedy_net_inside_covering_packing_sandwich(eps):
    pts = Sphere(2, 3).sample(20000, seed=4)
    k = greedy_net_count(pts, eps)
    # covering lower bound 1/P_max(ε) (each ε-ball holds at most P_max) and packing upper bound
    # 1/P_max(ε/2) (the net is ε-separated: disjoint ε/2-balls); small slack for a finite cloud
    assert 0.97 / sphere_pmax(eps, 2) <= k <= 1 / sphere_pmax(eps / 2, 2)


def test_fit_recovers_dimension_and_constant_from_exact_counts():
    eps = np.geomspace(0.01, 0.3, 20)
    d, C = fit_dimension_constant(eps, 1 / sphere_pmax(eps, 2))
    assert d == pytest.approx(2.0, abs=1e-3) and C == pytest.approx(4.0, rel=1e-3)


@pytest.mark.parametrize("man", [Sphere(2, 4), FlatTorus(2, 5), Sphere(3, 5)])
def test_fit_from_greedy_nets_slope_within_tolerance(man):
    pts = man.sample(20000, seed=5)
    eps = np.geomspace(0.1, 1.0, 10)
    counts = np.array([greedy_net_count(pts, e) for e in eps])
    d, _ = fit_dimension_constant(eps, counts, n_points=len(pts))
    assert abs(d - man.d) <= 0.15 * man.d


def test_discrete_pmax_upper_is_an_upper_bound():
    pts = fibonacci_sphere(16)
    up = discrete_pmax_upper(pts, [0.1, 0.5, 3.0])
    assert up[0] == pytest.approx(1 / 16) and up[-1] == 1.0


@pytest.mark.parametrize("man", [Sphere(2, 4), Sphere(5, 8), FlatTorus(2, 6), FlatTorus(3, 7)])
@pytest.mark.parametrize("est", [LevinaBickel(), TwoNN()])
def test_intrinsic_dimension_within_15_percent(man, est):
    x = man.sample(2000, seed=7)
    assert abs(est.fit(x).dimension_ - man.d) <= 0.15 * man.d
