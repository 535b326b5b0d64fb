"""The posterior-mean prior of JSCGC (after PMRF, Ohayon et al. 2025) and the pixel-space warm-up.

Closed forms: with v(x, t, ŷ) = a x + c(ŷ) the Euler sampler is affine in its start x1, so a sample from
x1 = σ ε + μ(ŷ) is fixed by the Gaussian-prior sample of the same ε; the flow-stage loss is Eq. 10 with
that x1, rebuilt here from the same random draws.
"""
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jscgc import AWGN, JSCGC
from jscgc.data import ring
from jscgc.encoders import MLPEncoder
from jscgc.flow import euler_sample, interpolate, sample_time
from jscgc.generators import MLPVelocity
from jscgc.latent_system import LatentSystem
from jscgc.system import run_once
from jscgc.train import TrainConfig, latest_checkpoint, load_trained, load_weights, train_stages


class _Affine(nn.Module):
    """v(x, t, ŷ) = a x + Σŷ + 0.01 SNR with one learnable a."""

    def __init__(self, a=0.5):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))

    def forward(self, x, t, received):
        return self.a * x + received.symbols.sum((1, 2))[:, None] + 0.01 * received.snr_db[:, None]


def _pm(sigma=0.2, velocity=None, warmup=1):
    torch.manual_seed(0)
    return JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), velocity or _Affine(), (2,), prior="posterior_mean",
                 prior_noise=sigma, warmup_steps=warmup)


def test_posterior_mean_needs_a_warmup_and_a_nonnegative_sigma():
    with pytest.raises(ValueError, match="warmup_steps"):
        _pm(warmup=0)
    with pytest.raises(ValueError, match="prior_noise"):
        _pm(sigma=-0.1)


def test_entering_the_flow_freezes_a_copy_of_the_warmed_up_decoder_and_the_encoder():
    system = _pm()
    system.set_stage("warmup")
    assert all(p.requires_grad for p in system.encoder.parameters())
    with torch.no_grad():
        system.velocity.a.fill_(0.3)                     # "what the warm-up stage trained"
    system.set_stage("flow")
    assert system.prior_net.a.item() == pytest.approx(0.3) and not system.prior_net.a.requires_grad
    assert not any(p.requires_grad for p in system.encoder.parameters()) and system.velocity.a.requires_grad
    with torch.no_grad():
        system.velocity.a.fill_(0.9)                     # the flow stage trains the velocity only
    assert system.prior_net.a.item() == pytest.approx(0.3)
    system.set_stage("flow")                             # flow -> flow (e.g. after loading): no copy
    assert system.prior_net.a.item() == pytest.approx(0.3)
    system.set_stage("warmup")
    assert all(p.requires_grad for p in system.encoder.parameters())


def test_sampling_starts_at_the_frozen_estimate_plus_sigma_noise():
    sigma, steps = 0.2, 4
    system = _pm(sigma)
    system.set_stage("warmup")
    system.set_stage("flow")
    with torch.no_grad():
        system.prior_net.a.fill_(-0.7)                   # prior and velocity now differ
    plain = JSCGC(system.encoder, AWGN(), system.velocity, (2,))
    x0 = ring()(5, torch.Generator().manual_seed(0))
    r = plain.transmit(x0, 5.0, torch.Generator().manual_seed(1))
    mu = -(r.symbols.sum((1, 2))[:, None] + 0.01 * r.snr_db[:, None]).expand(5, 2)    # −v_prior(0, 1, ŷ)
    torch.testing.assert_close(mu, -run_once(system.prior_net, r, (5, 2)))
    start = system.start(r, (5, 2), torch.Generator().manual_seed(2))
    torch.testing.assert_close(start, sigma * torch.randn(5, 2, generator=torch.Generator().manual_seed(2)) + mu)
    # the Euler map of dx/dt = a x + c is x1 -> A x1 + B with A = (1 - a/K)^K
    a_gain = (1 - 0.5 / steps) ** steps
    b = euler_sample(system.velocity, r, (5, 2), steps, x1=torch.zeros(5, 2))
    gauss = plain.receive(r, torch.Generator().manual_seed(2), steps=steps)
    pm = system.receive(r, torch.Generator().manual_seed(2), steps=steps)
    torch.testing.assert_close(pm - b, sigma * (gauss - b) + a_gain * mu)


def test_flow_stage_loss_is_eq10_from_the_posterior_mean_start():
    sigma = 0.3
    system = _pm(sigma)
    system.set_stage("warmup")
    system.set_stage("flow")
    x0 = ring()(6, torch.Generator().manual_seed(0))
    got = system.loss(x0, 4.0, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    r = system.transmit(x0, 4.0, g)
    eps = torch.randn(6, 2, generator=g)
    t = sample_time(6, g, "cpu", system.time_schedule)
    x1 = sigma * eps - run_once(system.prior_net, r, (6, 2))
    v = system.velocity(interpolate(x0, x1, t), t, r)
    torch.testing.assert_close(got, ((x1 - x0) - v).pow(2).mean())


def test_train_stages_keeps_the_warmup_decoder_and_encoder_and_reloads(tmp_path):
    def build():
        torch.manual_seed(0)
        return JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16, depth=1), (2,),
                     prior="posterior_mean", prior_noise=0.1, warmup_steps=5)

    system = build()
    train_stages(system, ring(), TrainConfig(steps=8, batch_size=16, lr=1e-2, progress=False), out_dir=tmp_path)
    warm = build()
    load_weights(warm, latest_checkpoint(tmp_path / "warmup"))
    for (name, p), q in zip(system.prior_net.named_parameters(), warm.velocity.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    for p, q in zip(system.encoder.parameters(), warm.encoder.parameters()):
        torch.testing.assert_close(p, q)
    moved = [not torch.equal(p, q) for p, q in zip(system.velocity.parameters(), system.prior_net.parameters())]
    assert any(moved), "the flow stage did not train the velocity"
    again = build()
    load_trained(again, tmp_path)
    r = system.transmit(ring()(4, torch.Generator().manual_seed(1)), 5.0, torch.Generator().manual_seed(2))
    torch.testing.assert_close(again.receive(r, torch.Generator().manual_seed(3)),
                               system.receive(r, torch.Generator().manual_seed(3)))


class _PoolExtractor(nn.Module):
    """A stand-in latent extractor: 2x2 average pooling and a fixed 3 -> C mixing (decode: its pseudo-
    inverse and nearest up-sampling). Enough to check where LatentSystem computes its loss."""
    factor, channels = 2, 4

    def __init__(self):
        super().__init__()
        self.register_buffer("mix", torch.randn(self.channels, 3, generator=torch.Generator().manual_seed(0)))

    def encode(self, x):
        return torch.einsum("ck,bkhw->bchw", self.mix, F.avg_pool2d(x, 2))

    def decode_unclamped(self, z):
        return F.interpolate(torch.einsum("kc,bchw->bkhw", torch.linalg.pinv(self.mix), z), scale_factor=2)

    def decode(self, z):
        return self.decode_unclamped(z).clamp(0, 1)


class _ConvVelocity(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x, t, received):
        return self.conv(x) + received.symbols.mean((1, 2))[:, None, None, None]


class _FlatEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4 * 4 * 4, 8)

    def forward(self, z):
        y = self.lin(z.flatten(1)).view(-1, 4, 2)
        return y / y.pow(2).sum(-1).mean(-1).sqrt()[:, None, None]


def test_pixel_loss_applies_to_the_warmup_estimate_only():
    torch.manual_seed(0)
    ex = _PoolExtractor()
    inner = JSCGC(_FlatEncoder(), AWGN(), _ConvVelocity(), (4, 4, 4), prior="posterior_mean", warmup_steps=2)
    system = LatentSystem(inner, ex, pixel_loss=True)
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    z0 = ex.encode(images)
    system.set_stage("warmup")
    got = system.loss(images, 5.0, torch.Generator().manual_seed(2))
    r = inner.transmit(z0, 5.0, torch.Generator().manual_seed(2))
    want = (ex.decode_unclamped(inner.estimate(r, tuple(z0.shape))) - images).pow(2).mean()
    torch.testing.assert_close(got, want)
    latent = (inner.estimate(r, tuple(z0.shape)) - z0).pow(2).mean()
    assert not torch.allclose(got, latent)              # not the latent MSE
    system.set_stage("flow")
    torch.testing.assert_close(system.loss(images, 5.0, torch.Generator().manual_seed(2)),
                               inner.loss(z0, 5.0, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="pixel_loss"):
        LatentSystem(nn.Identity(), ex, pixel_loss=True)


def test_preset_warmup_loss_selects_the_pixel_loss():
    from jscgc.methods import build_method
    from jscgc.presets import get_preset

    class _Spec32(_PoolExtractor):
        factor, channels = 8, 32

    tiny = get_preset("tiny")
    flow = dict(prior="posterior_mean", warmup_steps=2, prior_noise=0.1)
    system = build_method("jscgc", dataclasses.replace(tiny, flow={**flow, "warmup_loss": "pixel"}), _Spec32())
    assert system.pixel_loss and system.inner.prior_net is not None and system.stages == ("warmup", "flow")
    plain = build_method("jscgc", dataclasses.replace(tiny, flow=flow), _Spec32())
    assert not plain.pixel_loss and plain.anchor_lowpass == 0
    anchored = build_method("jscgc", dataclasses.replace(tiny, flow={**flow, "anchor_lowpass": 16}), _Spec32())
    assert anchored.anchor_lowpass == 16
    with pytest.raises(ValueError, match="warmup_loss"):
        build_method("jscgc", dataclasses.replace(tiny, flow={**flow, "warmup_loss": "lpips"}), _Spec32())


def test_lowpass_keeps_constants_and_removes_the_finest_checkerboard():
    from jscgc.latent_system import lowpass

    const = torch.full((2, 3, 16, 12), 0.3)
    torch.testing.assert_close(lowpass(const, 4), const)
    checker = ((torch.arange(16)[:, None] + torch.arange(12)[None]) % 2).float().expand(1, 3, 16, 12)
    torch.testing.assert_close(lowpass(checker - 0.5, 2), torch.zeros(1, 3, 16, 12))
    x, y = torch.rand(2, 1, 3, 16, 12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(lowpass(2 * x - y, 4), 2 * lowpass(x, 4) - lowpass(y, 4))
    torch.testing.assert_close(lowpass(x, 1), x)


class _SquashedExtractor(_PoolExtractor):
    """Decodes into (0.4, 0.6), so that adding a band of differences never reaches the clamp."""

    def decode(self, z):
        return 0.5 + 0.1 * torch.tanh(self.decode_unclamped(z))


def test_anchor_takes_the_coarse_band_from_the_mse_estimate_and_the_detail_from_the_sample():
    torch.manual_seed(0)
    ex = _SquashedExtractor()
    inner = JSCGC(_FlatEncoder(), AWGN(), _ConvVelocity(), (4, 4, 4), prior="posterior_mean", warmup_steps=2)
    inner.set_stage("warmup")
    inner.set_stage("flow")
    with torch.no_grad():
        inner.prior_net.conv.weight.mul_(-3.0)           # μ(ŷ) differs from what the flow produces
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    plain, anchored = LatentSystem(inner, ex), LatentSystem(inner, ex, anchor_lowpass=8)   # f = 8: the mean colour
    r = plain.transmit(images, 5.0, torch.Generator().manual_seed(2))
    x = plain.receive(r, torch.Generator().manual_seed(3), 4, images.shape)
    a = anchored.receive(r, torch.Generator().manual_seed(3), 4, images.shape)
    mu = ex.decode(inner.prior_mean(r, (2, 4, 4, 4)))
    assert not torch.allclose(x.mean((2, 3)), mu.mean((2, 3)), atol=1e-3)
    torch.testing.assert_close(a.mean((2, 3)), mu.mean((2, 3)))                       # the estimate's colour
    torch.testing.assert_close(a - a.mean((2, 3), keepdim=True), x - x.mean((2, 3), keepdim=True))  # the detail
    with pytest.raises(ValueError, match="anchor_lowpass"):
        LatentSystem(JSCGC(_FlatEncoder(), AWGN(), _ConvVelocity(), (4, 4, 4)), ex, anchor_lowpass=8)
