"""jscgc.channel_registry: capacities against closed forms, quadrature and Monte Carlo; one clear error per
bad name; every registered channel runs; Preset/ToySpec fields; a channel registered here alone runs
through the toy experiment with its own capacity."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from experiments import toy_manifold
from experiments.toy_channel import capacity, noise_scale
from jscgc.channel_registry import (CHANNELS, BitLaw, binary_entropy_bits, bit_channel, bit_law, build_channel,
                                    channel_capacity, channel_entry, check_channel, rayleigh_capacity,
                                    register_channel, symbol_channel)
from jscgc.channels import (BEC, BSC, AWGN, FadingBSC, RayleighBlockFading, ChannelOutput, ZeroForcedRayleigh,
                            bsc_crossover_for_snr, noise_variance, rayleigh_bsc_crossover)
from jscgc.methods import METHODS, ToySpec, build_method, build_toy
from jscgc.presets import get_preset
from theory.bound import binary_entropy
from theory.mi import awgn_capacity as theory_awgn_capacity
from theory.tasks import codebook_source, sphere_source

SNRS = [-40.0, -20.0, -17.0, -16.9, -5.0, 0.0, 7.5, 20.0, 40.0]


# ---- capacities per complex channel use --------------------------------------------------------------

@pytest.mark.parametrize("snr_db", SNRS)
def test_awgn_capacity_is_log2_one_plus_snr_and_the_toys_float(snr_db):
    s = 10 ** (snr_db / 10)
    assert channel_capacity("awgn", snr_db) == pytest.approx(math.log2(1 + s), rel=1e-12)
    # the toy's capacity column before the registry was theory.mi.awgn_capacity(2n, snr): the same float
    assert 3 * channel_capacity("awgn", snr_db) == float(theory_awgn_capacity(6, snr_db))


@pytest.mark.parametrize("snr_db", SNRS)
def test_rayleigh_ergodic_capacity_against_quadrature_and_below_awgn(snr_db):
    s = 10 ** (snr_db / 10)
    quad = integrate.quad(lambda g: math.exp(-g) * math.log2(1 + g * s), 0, math.inf, epsabs=0, epsrel=1e-12)[0]
    for name in ("rayleigh", "rayleigh-zf", "rayleigh:4"):
        assert channel_capacity(name, snr_db) == pytest.approx(quad, rel=1e-9)
    assert channel_capacity("rayleigh", snr_db) < channel_capacity("awgn", snr_db)     # Jensen
    if snr_db <= -20:                                                                  # E log2(1 + X s) ≈ (s − s²)/ln 2
        assert rayleigh_capacity(snr_db) == pytest.approx((s - s * s) / math.log(2), rel=3 * s * s)


@pytest.mark.parametrize("snr_db", [-5.0, 5.0, 20.0])
def test_rayleigh_ergodic_capacity_against_monte_carlo_of_the_channels_gains(snr_db):
    g = torch.Generator().manual_seed(int(snr_db) + 50)
    h = RayleighBlockFading(1).sample_gain(torch.zeros(400000, 1, 2, dtype=torch.float64), g)
    terms = torch.log2(1 + h.pow(2).sum(-1) * 10 ** (snr_db / 10)).flatten()
    se = terms.std().item() / math.sqrt(len(terms))
    assert abs(terms.mean().item() - channel_capacity("rayleigh", snr_db)) < 4 * se


@pytest.mark.parametrize("snr_db", [-5.0, 3.0, 12.0])
def test_bit_channel_capacities(snr_db):
    p = bsc_crossover_for_snr(snr_db)
    h = stats.entropy([p, 1 - p], base=2)                                    # an independent H2
    assert channel_capacity("bsc", snr_db) == pytest.approx(2 * (1 - h), rel=1e-12)
    assert channel_capacity("bsc:0.11", snr_db) == pytest.approx(2 * (1 - stats.entropy([0.11, 0.89], base=2)))
    assert channel_capacity("bsc:0", snr_db) == 2.0 and channel_capacity("bsc:0.5", snr_db) == 0.0
    assert channel_capacity("bec", snr_db) == pytest.approx(1.8) and channel_capacity("bec:0.25", snr_db) == 1.5
    # the binary channel a bit code sees over each symbol channel, and its capacity (2 bits per use)
    assert bit_law("awgn", snr_db) == BitLaw("bsc", p) and bit_law("bsc", snr_db) == BitLaw("bsc", p)
    assert bit_law("rayleigh", snr_db) == BitLaw("bsc", rayleigh_bsc_crossover(snr_db))
    assert bit_law("bec:0.3", snr_db) == BitLaw("bec", 0.3) and bit_law("bec:0.3", snr_db).capacity() == 1.4
    assert bit_law("rayleigh", snr_db).capacity() < bit_law("awgn", snr_db).capacity() < channel_capacity("awgn", snr_db)


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.03, 0.5, 0.97, 1.0])
def test_binary_entropy_is_theorys_float(p):
    assert binary_entropy_bits(p) == float(binary_entropy(p))     # the toy's NECST capacities depend on it


# ---- names and errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,words", [
    ("nope", "expected one of ['awgn', 'bec', 'bsc', 'rayleigh', 'rayleigh-zf'"), ("", "got ''"),
    ("awgn:3", "awgn takes no number"), ("bsc:2", "'bsc:2': BSC crossover p: expected a probability"),
    ("bec:x", "expected bec:E with a number"), ("bec:inf", "finite e"), ("rayleigh:0", "whole number"),
    ("rayleigh:1.5", "whole number"), (None, "expected one of"),
])
def test_bad_names_are_one_clear_error(name, words):
    with pytest.raises(ValueError, match="^[^\n]*$") as err:
        check_channel(name)
    assert words in str(err.value)


def test_register_channel_refuses_taken_names_and_incomplete_entries():
    with pytest.raises(ValueError, match="already registered"):
        register_channel("awgn", "symbols", AWGN, lambda s: 0.0)
    with pytest.raises(ValueError, match="carries"):
        register_channel("x-test", "qubits", AWGN, lambda s: 0.0)
    with pytest.raises(ValueError, match="bit_law"):
        register_channel("x-test", "bits", BSC, lambda s: 0.0)
    with pytest.raises(ValueError, match="both bits and bit_law"):
        register_channel("x-test", "symbols", AWGN, lambda s: 0.0, bits=BSC)
    with pytest.raises(ValueError, match="without ':'"):
        register_channel("a:b", "symbols", AWGN, lambda s: 0.0)
    assert "x-test" not in CHANNELS


def test_symbol_methods_refuse_bit_channels_with_one_line_naming_both():
    for name in ("bsc", "bec:0.2"):
        with pytest.raises(ValueError) as err:
            build_toy("cjscc", ToySpec(3, 2, channel=name))
        assert str(err.value).startswith(f"method cjscc sends complex symbols and channel '{name}' carries bits")
        with pytest.raises(ValueError, match="method jscgc .* channel 'bsc'"):
            build_method("jscgc", get_preset("tiny", channel="bsc"), None)     # refused before any part is built
        with pytest.raises(ValueError, match="carries bits"):
            symbol_channel(name)


# ---- every registered channel runs --------------------------------------------------------------------

@pytest.mark.parametrize("name", [*CHANNELS, "bsc:0.1", "bec:0.3", "rayleigh:2", "rayleigh-zf:3"])
def test_every_channel_runs_a_forward_pass(name):
    g = torch.Generator().manual_seed(0)
    entry = channel_entry(name)
    x = torch.randint(0, 2, (5, 6, 2), generator=g).float() if entry.carries == "bits" else torch.randn(5, 6, 2)
    out = build_channel(name)(x, torch.full((5,), 4.0), g)
    assert isinstance(out, ChannelOutput) and out.received.shape == x.shape and torch.isfinite(out.received).all()
    if entry.carries == "bits":
        assert set(out.received.unique().tolist()) <= {0.0, 0.5, 1.0}
    else:
        assert out.gain is None or out.gain.shape == x.shape
    if entry.bits is not None:                                   # what a bit code goes through
        bits = torch.randint(0, 2, (5, 6, 2), generator=g).float()
        assert bit_channel(name)(bits, torch.full((5,), 4.0), g).received.shape == bits.shape


def test_builders_use_the_named_channel():
    kinds = {"awgn": (AWGN, BSC), "rayleigh": (RayleighBlockFading, FadingBSC),
             "rayleigh-zf": (ZeroForcedRayleigh, FadingBSC)}
    for name, (symbols, bits) in kinds.items():
        for method in METHODS:
            system = build_toy(method, ToySpec(3, 2, hidden=8, encoder_hidden=8, channel=name))
            channel = system.stage1.channel if method == "diffjscc" else system.channel
            assert type(channel) is (bits if METHODS[method].binary else symbols), (name, method)
        assert type(build_method("cjscc", get_preset("tiny", channel=name), None).channel) is symbols
    assert build_toy("necst", ToySpec(3, 2, channel="awgn")).channel.p is None       # today's matched BSC
    assert build_toy("necst", ToySpec(3, 2, channel="bsc:0.2")).channel.p == 0.2
    necst = build_toy("necst", ToySpec(3, 2, channel="bec:0.4"))
    assert isinstance(necst.channel, BEC) and necst.channel.e == 0.4


def test_rayleigh_receiver_gets_mmse_symbols_and_csi_zf_gets_neither():
    x = torch.randn(4, 3)
    fading = build_toy("cjscc", ToySpec(3, 2, channel="rayleigh")).eval()
    with torch.no_grad():
        r = fading.transmit(x, 300.0, torch.Generator().manual_seed(0))     # noiseless: MMSE = z
        z = fading.encoder(x)
    assert r.gain is not None and r.gain.shape == (4, 2, 2)
    torch.testing.assert_close(r.symbols, z, atol=1e-4, rtol=1e-4)
    zf = build_toy("cjscc", ToySpec(3, 2, channel="rayleigh-zf")).eval()
    with torch.no_grad():
        assert zf.transmit(x, 0.0, torch.Generator().manual_seed(0)).gain is None


# ---- Preset and ToySpec --------------------------------------------------------------------------------

def test_preset_and_toyspec_channel_fields():
    assert get_preset("tiny").channel == "awgn" and get_preset("tiny").to_dict()["channel"] == "awgn"
    assert get_preset("small", channel="rayleigh").to_dict()["channel"] == "rayleigh"
    with pytest.raises(ValueError, match="^preset tiny: channel: expected one of"):
        get_preset("tiny", channel="fading")
    with pytest.raises(ValueError, match="preset small: channel 'bec:2'"):
        get_preset("small", channel="bec:2")
    assert ToySpec(3, 2).channel == "awgn" and ToySpec(3, 2, channel="bec:0.5").channel == "bec:0.5"
    with pytest.raises(ValueError, match="expected one of"):
        ToySpec(3, 2, channel="AWGN")


# ---- the toy's bookkeeping -----------------------------------------------------------------------------

def test_toy_capacity_is_the_channels_per_use_times_n():
    src = sphere_source(2, 3, 2)
    assert capacity("cjscc", src, 5.0, "rayleigh") == 2 * rayleigh_capacity(5.0)
    # NECST: 2n uses of the binary channel its bits see (the fading-averaged BSC over Rayleigh)
    p = rayleigh_bsc_crossover(5.0)
    assert capacity("necst", src, 5.0, "rayleigh") == pytest.approx(4 * (1 - stats.entropy([p, 1 - p], base=2)))
    assert capacity("necst", src, 5.0, "bec:0.25") == 3.0


def test_noise_scale_is_one_over_the_gain_per_real_component():
    assert noise_scale("awgn", 10, 2, 0) is None
    scale = noise_scale("rayleigh", 1000, 3, 0)                       # one gain per sample
    assert scale.shape == (1000, 6) and np.allclose(scale, scale[:, :1])
    h = RayleighBlockFading().sample_gain(torch.zeros(1000, 3, 2, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert np.allclose(scale[:, 0], 1 / h[:, 0].norm(dim=-1).numpy())
    per_symbol = noise_scale("rayleigh:1", 1000, 3, 0)
    assert np.allclose(per_symbol[:, 0::2], per_symbol[:, 1::2]) and not np.allclose(per_symbol[:, 0], per_symbol[:, 2])
    # E|h|^2 = 1: the mean of 1/scale² over 3000 independent gains
    assert abs(np.mean(per_symbol[:, ::2] ** -2.0) - 1) < 5 / math.sqrt(3000)


# ---- a channel registered in this file alone, run through the toy -------------------------------------

LOSS = 1 / math.sqrt(2)  # amplitude of a fixed 3 dB power loss


class LossyAWGN(nn.Module):
    """y = z / √2 + w, w ~ CN(0, N0): AWGN after a fixed 3 dB power loss (the receiver knows it)."""

    def forward(self, z, snr_db, generator=None):
        return AWGN()(LOSS * z, snr_db, generator)


def _lossy_gain(z, generator=None):
    gain = torch.zeros_like(z)
    gain[..., 0] = LOSS
    return gain


@pytest.fixture(scope="module")
def lossy():
    name = "awgn-3db-test"
    register_channel(name, "symbols", LossyAWGN, lambda snr_db: math.log2(1 + 10 ** (snr_db / 10) / 2),
                     csi=_lossy_gain, description="AWGN with a fixed 3 dB power loss", replace=True)
    yield name
    CHANNELS.pop(name)


def test_the_new_channel_behaves_as_registered(lossy):
    z = torch.randn(2000, 8, 2, dtype=torch.float64)
    y = build_channel(lossy)(z, 0.0, torch.Generator().manual_seed(0)).received
    n0 = noise_variance(0.0, z)[0].item()
    assert abs((y - LOSS * z).pow(2).sum(-1).mean().item() - n0) < 0.05 * n0
    assert channel_capacity(lossy, 0.0) == pytest.approx(math.log2(1.5))


def test_a_channel_registered_here_runs_through_the_toy(lossy, tmp_path):
    tiny = ["--train-steps", "3", "--eval-n", "200", "--mi-batch", "64", "--mi-batches", "1", "--snr", "0", "10",
            "--ref-n", "16", "--sw-n", "2", "--sw-samples", "4", "--no-figures", "--workers", "1"]
    assert toy_manifold.main(["--out", str(tmp_path), "--channel", lossy, "--methods", "cjscc", *tiny]) == 0
    df = pd.read_csv(tmp_path / "results.csv")
    learned = df[df.decoder != "map"]
    assert set(learned.channel) == {lossy} and len(learned) == 4 * 2 * 3
    expected = learned.n_symbols * np.log2(1 + 10 ** (learned.snr_db / 10) / 2)
    np.testing.assert_allclose(learned.capacity_bits, expected, rtol=1e-12)
    assert (learned.mi_bits_high <= learned.capacity_bits + 1e-9).all()
    assert "mmse" not in df                                        # no AWGN-law references for this channel
    ctrl = df[df.decoder == "map"]                                 # the negative control stays AWGN
    assert set(ctrl.channel) == {"awgn"} and np.allclose(ctrl.capacity_bits, 4 * math.log2(1 + 10 ** 1.5))
    assert json.loads((tmp_path / "config.json").read_text())["channel"] == lossy


def test_the_codebook_mi_uses_the_channels_law(lossy):
    """A gain of 1/√2 known to the receiver is AWGN at SNR − 3 dB: the codebook MI over the new channel
    equals the AWGN one at the lowered SNR (the same draws, so the same estimate up to rounding)."""
    from experiments.toy_channel import estimate_mi
    from experiments.toy_config import Config

    src = codebook_source(16, 2)
    system = build_toy("cjscc", ToySpec(src.m, src.n_symbols, hidden=8, encoder_hidden=8, channel=lossy)).eval()
    cfg = Config(snrs=[5.0], methods=["cjscc"], train_steps=1, batch_size=1, lr=1, hidden=8, euler_steps=1,
                 eval_n=1, mi_batch=64, mi_batches=1, per_snr=False, seed=0, workers=1, channel=lossy)
    got = estimate_mi(system, "cjscc", src, 5.0, cfg, seed=3)
    want = estimate_mi(system, "cjscc", src, 5.0 - 10 * math.log10(2), Config(**{**cfg.__dict__, "channel": "awgn"}), 3)
    assert got.bits == pytest.approx(want.bits, abs=1e-9)


def test_a_channel_of_unknown_law_gets_no_mi_estimate_only_its_capacity():
    """A channel registered with gaussian=False: the toy reports NaN for I(X; Ŷ) and the capacity as its
    upper end, instead of Gaussian-channel numbers."""
    from experiments.toy_channel import estimate_mi
    from experiments.toy_config import Config

    name = "clipped-test"
    register_channel(name, "symbols", lambda: _Clipped(), lambda snr_db: 1.0, gaussian=False, replace=True)
    try:
        src = sphere_source(1, 2, 1)
        system = build_toy("cjscc", ToySpec(src.m, src.n_symbols, hidden=8, encoder_hidden=8, channel=name)).eval()
        cfg = Config(snrs=[5.0], methods=["cjscc"], train_steps=1, batch_size=1, lr=1, hidden=8, euler_steps=1,
                     eval_n=1, mi_batch=64, mi_batches=1, per_snr=False, seed=0, workers=1, channel=name)
        mi = estimate_mi(system, "cjscc", src, 5.0, cfg, seed=0)
        assert math.isnan(mi.bits) and mi.low == 0.0 and mi.high == 1.0
    finally:
        CHANNELS.pop(name)


class _Clipped(nn.Module):
    def forward(self, z, snr_db, generator=None):
        return ChannelOutput(AWGN()(z, snr_db, generator).received.clamp(-1, 1))
