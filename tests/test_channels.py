import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy import integrate, stats

from jscgc.channels import (AWGN, BEC, BSC, ERASED, FadingBSC, RayleighBlockFading, ZeroForcedRayleigh,
                            bsc_crossover_for_snr, qpsk, db_to_linear, equalize, power_normalize,
                            rayleigh_bsc_crossover, symbol_power)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 8), n=st.integers(1, 64), scale=st.floats(1e-3, 1e3),
       over=st.sampled_from(["sample", "batch"]))
def test_power_normalize_exact(b, n, scale, over):
    z = scale * torch.randn(b, n, 2, dtype=torch.float64)
    p = symbol_power(power_normalize(z, over=over))
    if over == "sample":
        torch.testing.assert_close(p, torch.ones(b, dtype=torch.float64))
    else:
        assert abs(p.mean().item() - 1) < 1e-12


@settings(max_examples=60, deadline=None)
@given(snr_db=st.floats(-30, 50), b=st.integers(1, 4), n=st.integers(64, 512),
       seed=st.integers(0, 2**31 - 1))
def test_awgn_empirical_snr_in_confidence_interval(snr_db, b, n, seed):
    g = torch.Generator().manual_seed(seed)
    z = power_normalize(torch.randn(b, n, 2, dtype=torch.float64, generator=g))
    y = AWGN()(z, snr_db, g).received
    assert torch.isfinite(y).all()
    noise = y - z
    # Each real component is N(0, N0/2): sum of squares / (N0/2) ~ chi2(k), k = 2 b n. Tails of 1e-6 each:
    # 60 examples a run give a false alarm in about 1 run in 8000 (1e-4 tails failed ~1 run in 80: seed 667,
    # b = 2, n = 270 draws a 4.6-sigma noise energy), and a noise power off by 2x still falls outside for k >= 128.
    k = noise.numel()
    n0 = db_to_linear(-snr_db)
    stat = (noise.pow(2).sum() / (n0 / 2)).item()
    lo, hi = stats.chi2.ppf([1e-6, 1 - 1e-6], k)
    assert lo < stat < hi, (snr_db, stat / k)


def test_awgn_per_sample_snr(gen):
    z = power_normalize(torch.randn(3, 20000, 2, generator=gen))
    snr = torch.tensor([-10.0, 0.0, 20.0])
    noise = AWGN()(z, snr, gen).received - z
    measured = 10 * torch.log10(1 / noise.pow(2).sum(-1).mean(-1))
    torch.testing.assert_close(measured, snr, atol=0.1, rtol=0)


def test_awgn_bad_snr_shape():
    with pytest.raises(ValueError, match="snr_db"):
        AWGN()(torch.zeros(2, 4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(\.\.\., n, 2\)"):
        AWGN()(torch.zeros(2, 4), 0.0)


def test_rayleigh_unit_gain_equals_awgn():
    z = power_normalize(torch.randn(4, 16, 2, generator=torch.Generator().manual_seed(0)))
    gain = torch.zeros_like(z)
    gain[..., 0] = 1.0
    y_fade = RayleighBlockFading(4)(z, 7.0, torch.Generator().manual_seed(5), gain=gain).received
    y_awgn = AWGN()(z, 7.0, torch.Generator().manual_seed(5)).received
    torch.testing.assert_close(y_fade, y_awgn)


def test_rayleigh_blocks_share_gain_and_have_unit_power(gen):
    ch = RayleighBlockFading(block_size=4)
    out = ch(power_normalize(torch.randn(2000, 12, 2, generator=gen)), 10.0, gen)
    h = torch.view_as_complex(out.gain.contiguous())
    assert torch.equal(h[:, 0], h[:, 3]) and not torch.equal(h[:, 3], h[:, 4])
    # E|h|^2 = 1 for CN(0, 1); 6000 independent blocks: sd of the mean ~ 1/sqrt(6000).
    assert abs(h[:, ::4].abs().pow(2).mean().item() - 1) < 5 / math.sqrt(6000)


def test_equalisation_noiseless_and_mmse_shrinks(gen):
    z = power_normalize(torch.randn(8, 10, 2, generator=gen))
    ch = RayleighBlockFading(2)
    out = ch(z, 200.0, gen)  # effectively noiseless
    torch.testing.assert_close(equalize(out.received, out.gain, 200.0, "zf"), z, atol=1e-4, rtol=1e-4)
    noisy = ch(z, 0.0, gen, gain=out.gain)
    zf = equalize(noisy.received, noisy.gain, 0.0, "zf")
    mmse = equalize(noisy.received, noisy.gain, 0.0, "mmse")
    # MMSE = ZF scaled by |h|^2 / (|h|^2 + N0) < 1 per symbol.
    ratio = torch.view_as_complex(mmse.contiguous()) / torch.view_as_complex(zf.contiguous())
    h2 = torch.view_as_complex(out.gain.contiguous()).abs().pow(2)
    torch.testing.assert_close(ratio.real, h2 / (h2 + 1.0), atol=1e-4, rtol=1e-4)


def _binomial_ci(k, n):
    return stats.binomtest(k, n).proportion_ci(confidence_level=0.9999)


@pytest.mark.parametrize("p", [0.0, 0.01, 0.2, 0.5])
def test_bsc_flip_rate(p, gen):
    bits = torch.randint(0, 2, (50000,), generator=gen).float()
    out = BSC(p)(bits, generator=gen).received
    k = int((out != bits).sum())
    ci = _binomial_ci(k, bits.numel())
    assert ci.low <= p <= ci.high


@pytest.mark.parametrize("e", [0.0, 0.1, 0.7])
def test_bec_erasure_rate(e, gen):
    bits = torch.randint(0, 2, (50000,), generator=gen).float()
    out = BEC(e)(bits, generator=gen).received
    erased = out == ERASED
    assert torch.equal(out[~erased], bits[~erased])  # a BEC never flips
    ci = _binomial_ci(int(erased.sum()), bits.numel())
    assert ci.low <= e <= ci.high


def test_binary_channels_reject_bad_input():
    with pytest.raises(ValueError, match="probability"):
        BSC(1.5)
    with pytest.raises(ValueError, match="0/1"):
        BEC(0.1)(torch.tensor([0.0, 2.0]))


def test_bsc_crossover_matches_gray_qpsk_simulation(gen):
    snr_db = 2.0
    n = 200000
    bits = torch.randint(0, 2, (n, 1, 2), generator=gen).float()
    z = qpsk(bits)                           # two bits per complex symbol, unit power
    torch.testing.assert_close(z.pow(2).sum(-1), torch.ones(n, 1))
    y = AWGN()(z, snr_db, gen).received
    ber = ((y > 0).float() != bits).float().mean().item()
    p = bsc_crossover_for_snr(snr_db)
    assert abs(ber - p) < 5 * math.sqrt(p * (1 - p) / (2 * n))
    assert abs(p - stats.norm.sf(math.sqrt(10 ** (snr_db / 10)))) < 1e-12     # Q(sqrt(SNR))


def test_zero_forced_rayleigh_is_the_faded_output_divided_by_the_gain():
    z = power_normalize(torch.randn(6, 8, 2, generator=torch.Generator().manual_seed(0)))
    out = RayleighBlockFading(4)(z, 3.0, torch.Generator().manual_seed(9))
    zf = ZeroForcedRayleigh(4)(z, 3.0, torch.Generator().manual_seed(9))
    assert zf.gain is None                                     # the receiver gets y / h only
    y, h = (torch.view_as_complex(t.contiguous()) for t in (out.received, out.gain))
    torch.testing.assert_close(torch.view_as_complex(zf.received.contiguous()), y / h)
    clean = ZeroForcedRayleigh()(z, 300.0, torch.Generator().manual_seed(1)).received
    torch.testing.assert_close(clean, z, atol=1e-4, rtol=1e-4)  # noiseless: z back exactly


@pytest.mark.parametrize("snr_db", [-3.0, 4.0, 12.0])
def test_rayleigh_crossover_matches_hard_decision_qpsk_over_fading(snr_db, gen):
    """Gray QPSK through Rayleigh fading (a new gain per symbol), MMSE-equalised with the CSI, decided
    by sign: the bit error rate is E[Q(|h| √SNR)] (quadrature over |h|² ~ Exp(1)) = ½ (1 − √(s/(2+s)))."""
    n = 200000
    bits = torch.randint(0, 2, (n, 1, 2), generator=gen).double()
    out = RayleighBlockFading(1)(qpsk(bits), snr_db, gen)
    decided = (equalize(out.received, out.gain, snr_db) > 0).double()
    ber = (decided != bits).double().mean().item()
    p = rayleigh_bsc_crossover(snr_db)
    assert abs(ber - p) < 5 * math.sqrt(p * (1 - p) / (2 * n))
    s = 10 ** (snr_db / 10)
    quad = integrate.quad(lambda g: math.exp(-g) * stats.norm.sf(math.sqrt(g * s)), 0, math.inf)[0]
    assert p == pytest.approx(quad, rel=1e-7)
    assert p == pytest.approx(0.5 * (1 - math.sqrt(s / (2 + s))), rel=1e-9)


def test_fading_bsc_flips_at_the_fading_averaged_crossover_per_sample(gen):
    bits = torch.randint(0, 2, (3, 40000), generator=gen).float()
    snr = torch.tensor([-5.0, 5.0, 15.0])
    flips = (FadingBSC()(bits, snr, gen).received != bits).float().sum(1)
    for k, s in zip(flips.tolist(), snr.tolist()):
        ci = _binomial_ci(int(k), bits.shape[1])
        assert ci.low <= rayleigh_bsc_crossover(s) <= ci.high, (s, k)
    with pytest.raises(ValueError, match="snr_db"):
        FadingBSC()(bits)
