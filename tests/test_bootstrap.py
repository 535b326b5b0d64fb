"""jscgc.bootstrap: pooled moments from per-image statistics, parity with the set metrics of
jscgc.metrics, and the paired percentile bootstrap (known answers, pairing, width, bad inputs)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from jscgc import metrics
from jscgc.bootstrap import (frechet_from_moments, frechet_from_stats, gaussian_stats, paired_bootstrap,
                             pooled_moments)


def _per_image_rows(rng, m, rows, d, k=None, shift=0.0, scale=1.0):
    """m images of ``rows`` feature rows each: (rows, d) or (rows, k, d) arrays."""
    shape = (rows, d) if k is None else (rows, k, d)
    return [shift + scale * rng.normal(size=shape) for _ in range(m)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), m=st.integers(1, 5), d=st.integers(1, 5), k=st.sampled_from([None, 3]),
       data=st.data())
def test_pooled_moments_equal_mean_and_cov_of_duplicated_rows(seed, m, d, k, data):
    rng = np.random.default_rng(seed)
    images = [rng.normal(loc=1.0, size=(int(rng.integers(1, 7)),) + ((d,) if k is None else (k, d)))
              for _ in range(m)]
    weights = np.array(data.draw(st.lists(st.integers(0, 3), min_size=m, max_size=m)))
    rows = np.concatenate([images[0][:0]] + [x for x, w in zip(images, weights) for _ in range(w)])
    if len(rows) < 2:
        with pytest.raises(ValueError, match="at least 2"):
            pooled_moments([gaussian_stats(x) for x in images], weights)
        return
    mean, cov = pooled_moments([gaussian_stats(x) for x in images], weights)
    blocks = rows[:, None, :] if k is None else rows
    assert mean.shape == (blocks.shape[1], d) and cov.shape == (blocks.shape[1], d, d)
    for j in range(blocks.shape[1]):
        np.testing.assert_allclose(mean[j], blocks[:, j].mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cov[j], np.atleast_2d(np.cov(blocks[:, j], rowvar=False)), rtol=1e-9, atol=1e-11)


def test_pooled_moments_default_weights_are_ones():
    rng = np.random.default_rng(0)
    stats = [gaussian_stats(x) for x in _per_image_rows(rng, 4, 10, 3, k=2)]
    for got, want in zip(pooled_moments(stats), pooled_moments(stats, np.ones(4, dtype=int))):
        np.testing.assert_array_equal(got, want)


def test_frechet_from_stats_equals_frechet_distance():
    rng = np.random.default_rng(1)
    a = _per_image_rows(rng, 6, 40, 8)
    b = [x @ rng.normal(size=(8, 8)) * 0.5 + 0.3 for x in _per_image_rows(rng, 6, 40, 8)]
    got = frechet_from_stats([gaussian_stats(x) for x in a], [gaussian_stats(x) for x in b])
    want = metrics.frechet_distance(np.concatenate(a), np.concatenate(b))
    assert want > 1 and got == pytest.approx(want, rel=1e-8)


def test_frechet_from_stats_equals_patch_fd():
    gen = torch.Generator().manual_seed(7)
    refs = [torch.rand(1, 3, 32, 48, generator=gen) for _ in range(5)]
    outs = [(0.7 * x + 0.3 * torch.rand(1, 3, 32, 48, generator=gen)).clamp(0, 1) for x in refs]
    a = [gaussian_stats(metrics.patch_dct_features(x)) for x in refs]
    b = [gaussian_stats(metrics.patch_dct_features(x)) for x in outs]
    assert a[0].total.shape == (3, 63) and a[0].outer.shape == (3, 63, 63) and a[0].n == 24
    want = metrics.patch_fd(refs, outs)
    assert want > 0.01 and frechet_from_stats(a, b) == pytest.approx(want, rel=1e-8)


def test_frechet_from_moments_matches_the_one_dimensional_formula():
    # 1-d: (μa − μb)² + (σa − σb)²
    got = frechet_from_moments(np.array([0.5]), np.array([[4.0]]), np.array([-1.0]), np.array([[1.0]]))
    assert got == pytest.approx(1.5 ** 2 + (2 - 1) ** 2, rel=1e-12)


def test_set_with_itself_is_zero_and_identical_receivers_differ_by_exactly_zero():
    rng = np.random.default_rng(2)
    refs = [gaussian_stats(x) for x in _per_image_rows(rng, 10, 30, 4, k=3)]
    outs = [gaussian_stats(x) for x in _per_image_rows(rng, 10, 30, 4, k=3, shift=0.2)]
    assert abs(frechet_from_stats(refs, refs)) < 1e-9
    copy = [s._replace() for s in outs]
    table = paired_bootstrap(refs, {"a": outs, "b": copy, "self": refs}, reference="a", n_boot=200)
    assert list(table.columns) == ["receiver", "value", "lo", "hi", "n_images", "diff", "diff_lo", "diff_hi",
                                   "diff_excludes_zero"]
    assert list(table.receiver) == ["a", "b", "self"] and (table.n_images == 10).all()
    b = table.set_index("receiver").loc["b"]
    assert b["diff"] == 0 and b.diff_lo == 0 and b.diff_hi == 0 and not b.diff_excludes_zero
    assert (table.hi - table.lo)[:2].min() > 0.01
    # paired: the references and the outputs are resampled alike, so a copy of the references stays at 0
    assert max(abs(table.lo.iloc[2]), abs(table.hi.iloc[2])) < 1e-9
    a = table.set_index("receiver").loc["a"]
    assert (a["diff"], a.diff_lo, a.diff_hi, a.diff_excludes_zero) == (0, 0, 0, False)
    assert table.value.iloc[0] == pytest.approx(frechet_from_stats(refs, outs), rel=1e-12)
    assert abs(table.value.iloc[2]) < 1e-9 and table.diff_excludes_zero.iloc[2]


def _shifted(seed, shift, m=24, rows=200):
    """m one-dimensional images of ``rows`` draws of N(shift, 1)."""
    rng = np.random.default_rng(seed)
    return [gaussian_stats(x) for x in _per_image_rows(rng, m, rows, 1, shift=shift)]


def test_known_answer_intervals_cover_the_squared_shift():
    """1-d N(0, 1) references vs N(1, 1) outputs, 24 images of 200 rows: FD = δ̂² + (σ̂a − σ̂b)² ≈ 1, with
    s.d. ≈ 2 √(2 / 4800) ≈ 0.041, so a 95% interval is ≈ 0.16 wide and holds 1 in most of 20 data sets."""
    tables = [paired_bootstrap(_shifted(100 + 2 * r, 0.0), {"d1": _shifted(101 + 2 * r, 1.0)}, n_boot=300, seed=r)
              for r in range(20)]
    lo, hi, value = (np.array([t[c].iloc[0] for t in tables]) for c in ("lo", "hi", "value"))
    assert ((lo <= 1) & (1 <= hi)).sum() >= 16
    assert 0.14 < (hi - lo).mean() < 0.18 and abs(value.mean() - 1) < 0.03
    assert "diff" not in tables[0].columns


def test_difference_excludes_zero_only_when_the_shifts_differ():
    refs = _shifted(20, 0.0)
    outs = {"a": _shifted(21, 1.0), "same": _shifted(22, 1.0), "far": _shifted(23, 1.5)}
    table = paired_bootstrap(refs, outs, reference="a", n_boot=500, seed=3).set_index("receiver")
    assert not table.loc["same", "diff_excludes_zero"]
    assert table.loc["same", "diff_lo"] < 0 < table.loc["same", "diff_hi"]
    far = table.loc["far"]
    assert far.diff_excludes_zero and far.diff_lo > 0 and far["diff"] == pytest.approx(2.25 - 1, abs=0.3)


def test_interval_widens_with_fewer_images():
    refs, outs = _shifted(30, 0.0, m=48, rows=50), _shifted(31, 1.0, m=48, rows=50)
    few = paired_bootstrap(refs[:6], {"x": outs[:6]}, n_boot=500).iloc[0]
    many = paired_bootstrap(refs, {"x": outs}, n_boot=500).iloc[0]
    assert few.n_images == 6 and many.n_images == 48
    assert few.hi - few.lo > 1.5 * (many.hi - many.lo) > 0


def test_equals_a_plain_loop_over_the_documented_draws():
    """The table is the basic interval 2v − np.percentile of frechet_from_stats over the multinomial draws of
    default_rng(seed), one draw shared by the references and every receiver."""
    refs = [gaussian_stats(x) for x in _per_image_rows(np.random.default_rng(70), 7, 15, 3, k=2)]
    outs = {"p": [gaussian_stats(x) for x in _per_image_rows(np.random.default_rng(71), 7, 15, 3, k=2, shift=0.3)],
            "q": [gaussian_stats(x) for x in _per_image_rows(np.random.default_rng(72), 7, 15, 3, k=2, scale=1.4)]}
    table = paired_bootstrap(refs, outs, reference="p", n_boot=40, level=0.8, seed=9)
    draws = np.random.default_rng(9).multinomial(7, np.full(7, 1 / 7), size=40)
    boot = {name: np.array([frechet_from_stats(refs, xs, w) for w in draws]) for name, xs in outs.items()}
    for row in table.itertuples(index=False):
        q = np.percentile(boot[row.receiver], [90, 10])
        np.testing.assert_allclose([row.lo, row.hi], 2 * row.value - q, rtol=1e-10)
        qd = np.percentile(boot[row.receiver] - boot["p"], [90, 10])
        np.testing.assert_allclose([row.diff_lo, row.diff_hi], 2 * row.diff - qd, rtol=1e-10, atol=1e-12)
        assert row.value == pytest.approx(frechet_from_stats(refs, outs[row.receiver]), rel=1e-12)


def test_same_seed_same_table():
    refs, outs = _shifted(40, 0.0, m=8, rows=20), _shifted(41, 0.7, m=8, rows=20)
    first = paired_bootstrap(refs, {"x": outs}, n_boot=50, seed=5)
    assert first.equals(paired_bootstrap(refs, {"x": outs}, n_boot=50, seed=5))
    assert not first.equals(paired_bootstrap(refs, {"x": outs}, n_boot=50, seed=6))


_REFS, _OUTS = _shifted(50, 0.0, m=4, rows=5), _shifted(51, 1.0, m=4, rows=5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(outs={"x": _OUTS, "y": _OUTS[:3]}), r"one entry per reference \(4\): \{'y': 3\}"),
    (dict(reference="nobody"), "reference 'nobody' is not a receiver"),
    (dict(level=1.5), "level must lie strictly between 0 and 1, got 1.5"),
    (dict(level=0.0), "level must lie strictly between 0 and 1"),
    (dict(n_boot=0), "n_boot must be an integer ≥ 1"),
    (dict(n_boot=2.5), "n_boot must be an integer ≥ 1"),
    (dict(refs=_REFS[:1], outs={"x": _OUTS[:1]}), "refs must hold at least 2 images, got 1"),
    (dict(outs={}), "at least one receiver"),
])
def test_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_bootstrap(**{**dict(refs=_REFS, outs={"x": _OUTS}, n_boot=10), **kwargs})


def test_frechet_from_stats_rejects_unpaired_lists_and_bad_weights():
    a, b = _shifted(60, 0.0, m=4, rows=5), _shifted(61, 1.0, m=3, rows=5)
    with pytest.raises(ValueError, match="equal length, got 4, 3"):
        frechet_from_stats(a, b)
    with pytest.raises(ValueError, match="4 non-negative weights"):
        pooled_moments(a, np.array([1, 1, 1]))
    with pytest.raises(ValueError, match="rows"):
        gaussian_stats(np.zeros(5))


def test_several_references_share_one_set_of_resamples():
    refs = [gaussian_stats(x) for x in _per_image_rows(np.random.default_rng(80), 8, 20, 2)]
    outs = {name: [gaussian_stats(x) for x in _per_image_rows(np.random.default_rng(81 + i), 8, 20, 2, shift=0.2 * i)]
            for i, name in enumerate(("a", "b", "c"))}
    both = paired_bootstrap(refs, outs, reference=["a", "b"], n_boot=60, seed=4).set_index("receiver")
    for name in ("a", "b"):
        one = paired_bootstrap(refs, outs, reference=name, n_boot=60, seed=4).set_index("receiver")
        for suffix in ("", "_lo", "_hi", "_excludes_zero"):
            assert (both[f"diff_{name}{suffix}"] == one[f"diff{suffix}"]).all()
    with pytest.raises(ValueError, match="nobody"):
        paired_bootstrap(refs, outs, reference=["a", "nobody"], n_boot=5)
