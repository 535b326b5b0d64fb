"""Property tests of Theorem 1 (published and rigorous) and Fano's inequality."""
import math
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy.stats import entropy

from theory.bound import (bits_to_nats, continuum_fano_holds, delta_star, delta_star_continuum,
                          delta_star_nats, delta_star_rigorous, fano_check, kl2)
from theory.covering import sphere_pmax

mi = st.floats(0.0, 60.0)
dims = st.integers(1, 12)
consts = st.floats(0.01, 1e4)


@given(mi, st.floats(0.01, 5.0), dims, consts)
def test_delta_star_strictly_decreasing_in_mi(i, di, d, C):
    assert delta_star(i + di, d, C) < delta_star(i, d, C)


@given(mi, dims, consts)
def test_delta_star_halves_when_mi_grows_by_d(i, d, C):
    assert math.isclose(delta_star(i + d, d, C), delta_star(i, d, C) / 2, rel_tol=1e-12)


@given(mi, dims, consts, st.floats(0.01, 100.0))
def test_scaling_the_manifold_scales_delta_star(i, d, C, scale):
    # Scaling M by s multiplies K(δ s) = K(δ), i.e. C by s^d.
    assert math.isclose(delta_star(i, d, C * scale ** d), scale * delta_star(i, d, C), rel_tol=1e-9)


@given(mi, dims, consts)
def test_bits_and_nats_agree(i, d, C):
    assert math.isclose(delta_star(i, d, C), delta_star_nats(bits_to_nats(i), d, C), rel_tol=1e-12)


@given(mi, dims, consts)
def test_rigorous_tends_to_2_pow_1_over_d_times_paper(i, d, C):
    ratio = delta_star_rigorous(i, d, C, 1e-12) / delta_star(i, d, C)
    assert math.isclose(ratio, 2 ** (1 / d), rel_tol=1e-6)


def test_rigorous_below_paper_for_some_finite_p():
    # docs/theory.md, '2. Finite error probability': d = 2, I = 5.44 bits, p = 0.1:
    # rigorous 0.205 < paper 0.214 (C = 4).
    assert delta_star_rigorous(5.44, 2, 4.0, 0.1) == pytest.approx(0.205, abs=1e-3)
    assert delta_star(5.44, 2, 4.0) == pytest.approx(0.214, abs=1e-3)


@given(mi, dims, consts, st.floats(0.0, 0.9), st.floats(0.001, 0.09))
def test_rigorous_decreasing_in_p_and_mi(i, d, C, p, dp):
    assume(i > 0.5)  # for I near 0 the h(p) term dominates
    assert delta_star_rigorous(i + 1, d, C, p) < delta_star_rigorous(i, d, C, p)
    # larger p (a more tolerant decoder) never raises the bound once I exceeds h(p)/p-ish scales
    if i > 5:
        assert delta_star_rigorous(i, d, C, p + dp) <= delta_star_rigorous(i, d, C, p) * (1 + 1e-12)


@settings(max_examples=60)
@given(st.integers(2, 6), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_fano_holds_on_random_joint_pmfs(k, l, seed):
    rng = np.random.default_rng(seed)
    joint = rng.dirichlet(np.full(k * l, 0.3)).reshape(k, l)
    res = fano_check(joint)
    assert res.holds, res


def _h_bits(p: float) -> float:
    """Binary entropy in bits, written out here (not theory.bound.binary_entropy)."""
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log1p(-p)) / math.log(2)


@settings(max_examples=300)
@given(mi, dims, consts, st.floats(0.0, 0.95))
def test_rigorous_delta_is_where_fano_is_tight(i, d, C, p):
    """δ*_p is the radius at which Fano's inequality for X uniform on K(δ) = C δ^(−d) cells,
    (1 − p) log2 K(δ) − h(p) ≤ I (docs/theory.md, 'The finite-p formula'), holds with equality;
    checked with K and h re-derived here. Kills a doubled (or dropped) h(p) in delta_star_rigorous
    (tried: fails at the first p > 0), a misplaced (1 − p), and h(p) in nats."""
    delta = float(delta_star_rigorous(i, d, C, p))
    # With p near 1 the exponent (I + h(p)) / (1 − p) reaches ~1100 bits: δ* is then below the
    # smallest normal double (subnormal or 0) and carries too few digits to check to 1e-9.
    assume(delta >= sys.float_info.min)
    log2_k = math.log2(C) - d * math.log2(delta)
    assert math.isclose((1 - p) * log2_k - _h_bits(p), i, rel_tol=1e-9, abs_tol=1e-9)


def _fano_equality_joint(k: int, l: int, pe: float, rng) -> np.ndarray:
    """A K × L joint pmf with P(x̂_MAP ≠ X | y) = pe for every y and the error spread evenly over the
    other K − 1 symbols: Fano's inequality holds with equality, H(X | Y) = h(pe) + pe log2(K − 1)."""
    p_y = rng.dirichlet(np.ones(l))
    cond = np.full((k, l), pe / (k - 1))
    cond[rng.integers(0, k, l), np.arange(l)] = 1 - pe
    return cond * p_y


@settings(max_examples=200)
@given(st.integers(2, 7), st.integers(1, 6), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_fano_check_is_fanos_bound_for_map_and_tight_in_the_equality_case(k, l, frac, seed):
    """On a random joint pmf, fano_check's H(X|Y), MAP error and bound h(P_e) + P_e log2(K − 1) equal
    independent computations (scipy's entropy; the argmax decoder), and the bound is ≥ H(X|Y); on
    Fano's equality case the bound equals H(X|Y). Kills a lenient fano_check (tried each): log2 K in
    place of log2(K − 1), any positive slack added to the bound, the error of a worse decoder than MAP
    (e.g. maximising over the wrong axis) — each makes the bound exceed H(X|Y) where they are equal.
    A looser tolerance inside ``holds`` itself survives (tried): on a valid pmf Fano always holds, so no
    input can tell the two apart."""
    rng = np.random.default_rng(seed)
    joint = rng.dirichlet(np.full(k * l, 0.3)).reshape(k, l)
    res = fano_check(joint)
    p_y = joint.sum(0)
    cond = sum(p_y[j] * entropy(joint[:, j] / p_y[j], base=2) for j in range(l) if p_y[j] > 0)
    pe = 1 - sum(joint[np.argmax(joint[:, j]), j] for j in range(l))
    assert res.cond_entropy == pytest.approx(cond, abs=1e-9) and res.pe_map == pytest.approx(pe, abs=1e-12)
    assert res.fano_bound == pytest.approx(_h_bits(pe) + pe * math.log2(k - 1), abs=1e-9)
    assert res.holds and res.cond_entropy <= res.fano_bound + 1e-9
    tight = fano_check(_fano_equality_joint(k, l, frac * (k - 1) / k, rng))
    assert tight.holds and tight.fano_bound == pytest.approx(tight.cond_entropy, abs=1e-9)


@settings(max_examples=60)
@given(st.floats(0.0, 1.0), st.floats(1e-6, 1.0 - 1e-6), st.floats(0.0, 1.0))
def test_kl2_nonnegative_and_zero_on_diagonal(a, b, c):
    assert kl2(a, b) >= -1e-12
    assert kl2(b, b) == pytest.approx(0.0, abs=1e-12)


@given(st.floats(0.5, 20.0), st.floats(0.01, 0.4))
def test_continuum_fano_minimum_delta_is_at_least_the_formula(i, p):
    # S² (C = 4, d = 2) with centres on the sphere has K(δ) = 4/δ² exactly, and kl2(1 − p ‖ q) ≥
    # (1 − p) log2(1/q) − h(p), so the continuum bound is at least as large as the formula.
    cont = delta_star_continuum(i, p, lambda e: sphere_pmax(e, 2), delta_hi=2.0)
    assert cont >= delta_star_rigorous(i, 2, 4.0, p) - 1e-8


def test_continuum_fano_flags_an_impossible_decoder():
    assert not continuum_fano_holds(1.0, 0.0, 1 / 16)  # P_e = 0 among 16 cells needs 4 bits
    assert continuum_fano_holds(4.0, 0.0, 1 / 16)
    assert continuum_fano_holds(0.0, 0.0, 1.0)  # nothing implied when P_max = 1


def test_bad_inputs():
    with pytest.raises(ValueError, match="d > 0 and C > 0"):
        delta_star(1.0, 0, 4.0)
    with pytest.raises(ValueError, match="p must be in"):
        delta_star_rigorous(1.0, 2, 4.0, 1.0)
    with pytest.raises(ValueError, match="pmf"):
        fano_check(np.ones((2, 2)))
