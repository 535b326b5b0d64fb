"""theory.tasks: the toy sources and the MAP negative control against closed forms."""
import math

import numpy as np
import pytest

from theory.manifolds import fibonacci_sphere
from theory.tasks import awgn_sigma, codebook_source, default_sources, map_control, sphere_source


@pytest.mark.parametrize("d,m,C", [(1, 2, math.pi), (2, 3, 4.0), (4, 6, 16 / 3)])
def test_sphere_source_constant_is_vol_over_ball_volume(d, m, C):
    """Vol(S¹)/ω₁ = 2π/2, Vol(S²)/ω₂ = 4π/π, Vol(S⁴)/ω₄ = (8π²/3)/(π²/2)."""
    src = sphere_source(d, m, 1)
    assert src.C == pytest.approx(C, rel=1e-12) and (src.d, src.m, src.diameter) == (d, m, 2.0)


@pytest.mark.parametrize("d,m", [(1, 2), (2, 3), (4, 6)])
def test_sphere_source_samples_lie_on_it_and_distance_is_radial(d, m):
    src = sphere_source(d, m, 1)
    x = src.sample(500, 3)
    assert x.shape == (500, m) and np.array_equal(x, src.sample(500, 3))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(src.distance(x), 0.0, atol=1e-12)
    np.testing.assert_allclose(src.distance(1.7 * x), 0.7, atol=1e-12)


@pytest.mark.parametrize("delta", [0.05, 0.3, 0.8, 0.99, 1.0, 1.5])
def test_sphere_source_pmax_is_the_centres_anywhere_closed_form(delta):
    """Best centre at distance √(1 − δ²) from the origin catches the cap of angle arcsin δ:
    S¹ holds arcsin(δ)/π of the circle, S² (1 − √(1 − δ²))/2 of the sphere; δ ≥ 1 holds all."""
    s1, s2 = sphere_source(1, 2, 1), sphere_source(2, 3, 2)
    if delta >= 1:
        assert s1.pmax(delta) == 1.0 and s2.pmax(delta) == 1.0
    else:
        assert s1.pmax(delta) == pytest.approx(math.asin(delta) / math.pi, rel=1e-9)
        assert s2.pmax(delta) == pytest.approx((1 - math.sqrt(1 - delta ** 2)) / 2, rel=1e-9)


def test_codebook_source_samples_points_and_measures_nearest_point_distance():
    src = codebook_source(16, 2)
    pts = fibonacci_sphere(16)
    np.testing.assert_array_equal(src.points, pts)
    x = src.sample(300, 1)
    assert all((pts == row).all(1).any() for row in x)
    assert np.all(src.distance(pts) == 0)
    y = np.random.default_rng(2).standard_normal((200, 3))
    brute = np.linalg.norm(y[:, None] - pts[None], axis=-1).min(1)
    np.testing.assert_allclose(src.distance(y), brute, atol=1e-12)
    assert (src.d, src.m, src.C) == (2, 3, 4.0)


def test_codebook_pmax_upper_bound_at_the_extremes():
    src = codebook_source(16, 2)
    spacing = (np.linalg.norm(src.points[:, None] - src.points[None], axis=-1) + 9 * np.eye(16)).min()
    assert src.pmax(0.49 * spacing) == 1 / 16  # a 2δ-ball around a point holds only that point
    assert src.pmax(1.0) == 1.0                # 2δ = 2 is the diameter
    grid = np.linspace(0.01, 1.0, 50)
    assert np.all(np.diff([src.pmax(e) for e in grid]) >= 0)


def test_default_sources_are_the_experiments_four():
    got = [(s.name, s.d, s.m, s.n_symbols) for s in default_sources()]
    assert got == [("S1", 1, 2, 1), ("S2", 2, 3, 2), ("S4", 4, 6, 3), ("codebook16_S2", 2, 3, 2)]


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 15.0])
def test_awgn_sigma_gives_noise_power_one_over_snr_per_complex_symbol(snr_db):
    assert 2 * awgn_sigma(snr_db) ** 2 == pytest.approx(10 ** (-snr_db / 10), rel=1e-12)


def test_map_control_code_has_unit_power_and_decodes_exactly_at_15_db():
    ctrl = map_control(seed=1, n=5000)
    assert ctrl.code.shape == (16, 8) and ctrl.snr_db == 15.0
    assert np.mean(np.sum(ctrl.code ** 2, axis=1)) / 4 == pytest.approx(1.0)  # per complex use
    assert ctrl.err.shape == (5000,) and np.all(ctrl.err == 0)
    assert ctrl.x_hat.shape == (5000, 3) and np.all(ctrl.source.distance(ctrl.x_hat) < 1e-12)
