"""theory.check against closed forms, known answers and independent re-implementations."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate
from scipy.optimize import brentq

from theory.bound import binary_entropy, delta_star, delta_star_rigorous
from theory.check import (binom_ppf, bound_row_values, bound_rows, capacity_bits, delta_star_envelope,
                          mi_of_bits, mi_of_codebook, mi_of_samples, quantile_ci)
from theory.covering import sphere_pmax
from theory.tasks import map_control, sphere_source

ROW_KEYS = ["p", "delta_emp", "delta_emp_ci_low", "delta_emp_ci_high", "delta_star_paper",
            "delta_star_rigorous", "C_rigorous", "delta_star_continuum", "bound_holds", "paper_bound_holds"]


# ---- quantile_ci -------------------------------------------------------------------------------

@pytest.mark.parametrize("n,q", [(100, 0.8), (200, 0.9), (400, 0.95)])
def test_quantile_ci_covers_the_true_quantile_at_the_nominal_rate(n, q):
    """U(0, 1) samples: the true q-quantile is q; the 95% CI must cover it in ≈ 95% of draws
    (order-statistic CIs are conservative, so at least 95% up to Monte Carlo error)."""
    rng = np.random.default_rng(n)
    reps = 2000
    cover = np.mean([lo <= q <= hi for _, lo, hi in (quantile_ci(rng.random(n), q) for _ in range(reps))])
    se = math.sqrt(0.95 * 0.05 / reps)
    assert 0.95 - 4 * se <= cover <= 0.995


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 500), st.floats(0.5, 0.99), st.integers(0, 10_000))
def test_quantile_ci_point_is_the_empirical_quantile_inside_its_ci(n, q, seed):
    x = np.random.default_rng(seed).exponential(size=n)
    point, lo, hi = quantile_ci(x, q)
    assert point == np.quantile(x, q, method="inverted_cdf")
    assert lo <= point <= hi and lo in x and hi in x


# ---- delta_star_envelope -----------------------------------------------------------------------

@pytest.mark.parametrize("d,m", [(1, 2), (2, 3), (4, 6)])
@pytest.mark.parametrize("mi", [0.5, 2.0, 5.0, 10.0])
@pytest.mark.parametrize("p", [0.05, 0.2])
def test_envelope_constant_is_valid_up_to_delta_star(d, m, mi, p):
    """C δ^(−d) ≤ 1/P_max(δ) on a fine grid of (0, δ*_p] that the function never saw, C never
    above the sphere's asymptotic constant, and δ*_p is the finite-p formula at that C."""
    src = sphere_source(d, m, 1)
    bound = delta_star_envelope(mi, p, d, src.C, src.pmax)
    grid = np.linspace(bound.delta * 1e-3, bound.delta, 2001)
    k = 1 / sphere_pmax(grid, d, centres="anywhere")
    assert np.all(bound.C * grid ** -float(d) <= k * (1 + 1e-9))
    assert bound.C <= src.C
    assert bound.delta == pytest.approx(float(delta_star_rigorous(mi, d, bound.C, p)), rel=1e-12)


@pytest.mark.parametrize("d,C,pmax", [
    (2, 4.0, lambda e: float(sphere_pmax(e, 2))),     # unit S², centres on it: K = 4/δ² exactly
    (1, 3.0, lambda e: min(1.0, e / 3.0)),
    (3, 10.0, lambda e: min(1.0, e ** 3 / 10.0)),
])
@pytest.mark.parametrize("p", [0.05, 0.1, 0.2])
def test_envelope_keeps_the_constant_where_pmax_is_an_exact_power_law(d, C, pmax, p):
    mi = 3.0  # δ*_p < C^(1/d), where 1/P_max = C δ^(−d) holds
    bound = delta_star_envelope(mi, p, d, C, pmax)
    assert bound.C == pytest.approx(C, rel=1e-12)
    assert bound.delta == pytest.approx(float(delta_star_rigorous(mi, d, C, p)), rel=1e-12)


@pytest.mark.parametrize("mi", [5.0, 8.0, 10.0])
@pytest.mark.parametrize("p", [0.05, 0.1, 0.2])
def test_envelope_is_near_the_largest_valid_constant_on_s2_with_centres_anywhere(mi, p):
    """Unit S², centres anywhere: K(δ) δ² = 2 (1 + √(1 − δ²)) falls with δ < 1, so the largest
    valid C solves C = 2 (1 + √(1 − δ*_p(C)²)); the iteration must land just below it."""
    def gap(c):
        return c - 2 * (1 + math.sqrt(1 - float(delta_star_rigorous(mi, 2, c, p)) ** 2))
    best = brentq(gap, 1.0, 4.0)
    bound = delta_star_envelope(mi, p, 2, 4.0, lambda e: float(sphere_pmax(e, 2, centres="anywhere")))
    assert best * (1 - 1e-3) <= bound.C <= best * (1 + 1e-9)


# ---- capacity and MI intervals -----------------------------------------------------------------

def test_capacity_closed_forms():
    assert capacity_bits(3, 0.0) == pytest.approx(3.0)                  # 3 log2(1 + 1)
    assert capacity_bits(2, 10 * math.log10(3)) == pytest.approx(4.0)   # 2 log2(1 + 3)
    assert capacity_bits(5, 7.0, crossover=0.0) == pytest.approx(5.0)
    assert capacity_bits(5, 7.0, crossover=0.5) == pytest.approx(0.0)
    assert capacity_bits(4, 7.0, crossover=0.11) == pytest.approx(4 * (1 - float(binary_entropy(0.11))))


@pytest.mark.parametrize("crossover", [0.0, 0.05, 0.2])
def test_mi_of_bits_one_uniform_bit_is_one_minus_h(crossover):
    bits = (np.arange(1000) % 2)[:, None]
    est = mi_of_bits(bits, crossover)
    assert est.bits == pytest.approx(1 - float(binary_entropy(crossover)), abs=1e-12)
    assert est.low <= est.bits <= est.high
    assert est.high - est.bits == pytest.approx(est.bits - est.low)


@pytest.mark.parametrize("e", [0.0, 0.3, 1.0])
def test_mi_of_bits_over_a_bec_is_one_minus_e_per_uniform_bit(e):
    words = (np.arange(2 ** 3)[:, None] >> np.arange(3)) & 1
    est = mi_of_bits(np.tile(words, (10, 1)), e, "bec")
    assert est.bits == pytest.approx(3 * (1 - e), abs=1e-12) and est.low <= est.bits <= est.high
    with pytest.raises(ValueError, match="kind must be 'bsc' or 'bec'"):
        mi_of_bits(words, e, "bac")


def test_mi_of_bits_noiseless_uniform_code_is_n_bits():
    words = (np.arange(2 ** 6)[:, None] >> np.arange(6)) & 1
    assert mi_of_bits(np.tile(words, (10, 1)), 0.0).bits == pytest.approx(6.0, abs=1e-12)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_mi_of_codebook_matches_bpsk_by_quadrature(sigma):
    """X uniform on ±1 through Y = X + σ Z: I = 1 − E[log2(1 + e^(−2Y/σ²)) | X = 1]."""
    def integrand(y):
        return math.exp(-(y - 1) ** 2 / (2 * sigma ** 2)) / math.sqrt(2 * math.pi) / sigma \
            * math.log2(1 + math.exp(-2 * y / sigma ** 2))
    exact = 1 - integrate.quad(integrand, 1 - 12 * sigma, 1 + 12 * sigma)[0]
    est = mi_of_codebook(np.array([[1.0], [-1.0]]), sigma, seed=3)
    assert abs(est.bits - exact) <= 2 * (est.high - est.bits)  # within 4 standard errors
    assert est.low < est.bits < est.high


def test_mi_of_samples_brackets_the_gaussian_channel_and_respects_the_capacity():
    """Gaussian codes of variance 1 with σ = 1: I = ½ log2(1 + 1) = 0.5 bit per dimension."""
    codes = np.random.default_rng(0).standard_normal((4096, 2))
    est = mi_of_samples(codes, 1.0, batch=2048, seed=1, capacity=10.0)
    assert est.low <= 1.0 <= est.high and abs(est.bits - 1.0) < 0.05
    clipped = mi_of_samples(codes, 1.0, batch=2048, seed=1, capacity=0.7)
    assert clipped.high == 0.7 and clipped.low <= clipped.bits <= clipped.high


# ---- bound rows --------------------------------------------------------------------------------

def test_bound_row_values_holds_exactly_at_the_larger_bound():
    src = sphere_source(2, 3, 2)
    vals = bound_row_values(src, 4.0, 0.1, 0.0)
    edge = max(vals["delta_star_rigorous"], vals["delta_star_continuum"])
    assert edge > 0 and not vals["bound_holds"]
    assert bound_row_values(src, 4.0, 0.1, edge)["bound_holds"]
    assert not bound_row_values(src, 4.0, 0.1, edge - 1e-6)["bound_holds"]
    assert vals["delta_star_rigorous"] == delta_star_envelope(4.0, 0.1, 2, src.C, src.pmax).delta


def test_a_perfect_decoder_at_low_mi_violates_every_bound_and_a_useless_one_none():
    src = sphere_source(2, 3, 2)
    perfect = bound_rows(np.zeros(1000), 2.0, 2.2, src, (0.05, 0.1, 0.2))
    assert [list(r) for r in perfect] == [ROW_KEYS] * 3
    assert not any(r["bound_holds"] or r["paper_bound_holds"] for r in perfect)
    assert [r["delta_star_paper"] for r in perfect] == [float(delta_star(2.0, 2, src.C))] * 3
    useless = bound_rows(np.full(1000, src.diameter), 2.0, 2.2, src, (0.05, 0.1, 0.2))
    assert all(r["bound_holds"] and r["paper_bound_holds"] for r in useless)


def test_negative_control_violates_the_paper_and_not_the_rigorous_bound():
    """docs/theory.md, 'The negative control': I ≈ 4.00 bits, δ_emp = 0, paper δ* ≈ 0.354."""
    ctrl = map_control(seed=0, n=20_000)
    assert np.all(ctrl.err == 0) and np.all(ctrl.source.distance(ctrl.x_hat) < 1e-12)
    mi = mi_of_codebook(ctrl.code, ctrl.sigma, seed=0, n=50_000)
    assert mi.bits == pytest.approx(4.0, abs=1e-3)
    rows = bound_rows(ctrl.err, mi.bits, mi.high, ctrl.source, (0.05, 0.1, 0.2))
    assert all(r["delta_emp"] == 0 and r["delta_star_paper"] == pytest.approx(0.354, abs=2e-3)
               for r in rows)
    assert not any(r["paper_bound_holds"] for r in rows) and all(r["bound_holds"] for r in rows)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.floats(1e-6, 1 - 1e-6), st.floats(0.0, 1.0))
def test_binom_ppf_is_scipys(n, level, q):
    """quantile_ci's binomial quantile (no scipy.stats import) is the smallest k with P(B ≤ k) ≥ level,
    and equals scipy.stats.binom.ppf at the levels a CI uses (0 < level < 1) except where P(B ≤ k)
    equals the level to rounding (e.g. Binomial(35, ½) at ½), where the two CDF codes may round apart."""
    from scipy import stats

    k = binom_ppf(level, n, q)
    cdf = stats.binom.cdf([k - 1, k], n, q)
    assert cdf[1] >= level - 1e-12 and (k == 0 or cdf[0] < level + 1e-12)
    if abs(cdf[0] - level) > 1e-12 and abs(cdf[1] - level) > 1e-12:
        assert k == int(stats.binom.ppf(level, n, q))
