"""The posterior-mean prior of JSCGC (after PMRF, Ohayon et al. 2025), its two-stage plan and the pixel-space MSE stage.

Closed forms: with v(x, t, ŷ) = a x + c(ŷ) the Euler sampler is affine in its start x1, so a sample from
x1 = σ ε + μ(ŷ) is fixed by the Gaussian-prior sample of the same ε; the flow-stage loss is Eq. 10 with
that x1, rebuilt here from the same random draws.
"""

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
from jscgc.flow import run_once
from jscgc.checkpoints import load_trained
from jscgc.train import TrainConfig, train
from jscgc.types import Dial


class _Affine(nn.Module):
    """v(x, t, ŷ) = a x + Σŷ + 0.01 SNR with one learnable a."""

    def __init__(self, a=0.5):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))

    def forward(self, x, t, received):
        return self.a * x + received.symbols.sum((1, 2))[:, None] + 0.01 * received.snr_db[:, None]


def _pm(sigma=0.2, velocity=None, share=0.5):
    torch.manual_seed(0)
    return JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), velocity or _Affine(), (2,), prior="posterior_mean",
                 prior_noise=sigma, mse_share=share)


def test_posterior_mean_needs_an_mse_stage_and_a_nonnegative_sigma():
    with pytest.raises(ValueError, match="mse_share"):
        _pm(share=0)
    with pytest.raises(ValueError, match="prior_noise"):
        _pm(sigma=-0.1)


def test_the_plan_trains_mu_then_only_the_network_after_copying_mu_into_the_prior():
    system = _pm()
    mse, flow = system.plan()
    assert (mse.name, mse.trains, mse.begin) == ("mse", ("",), None)
    assert (flow.name, flow.trains) == ("flow", ("velocity.",))
    with torch.no_grad():
        system.velocity.a.fill_(0.3)                     # "what the MSE stage trained"
    flow.begin()
    assert system.prior_net.a.item() == pytest.approx(0.3) and not system.prior_net.a.requires_grad
    with torch.no_grad():
        system.velocity.a.fill_(0.9)                     # the flow stage trains the velocity only
    assert system.prior_net.a.item() == pytest.approx(0.3)


def test_sampling_starts_at_the_frozen_estimate_plus_sigma_noise():
    sigma, steps = 0.2, 4
    system = _pm(sigma)
    system.freeze_prior()
    with torch.no_grad():
        system.prior_net.a.fill_(-0.7)                   # prior and velocity now differ
    plain = JSCGC(system.encoder, AWGN(), system.velocity, (2,))
    x0 = ring()(5, torch.Generator().manual_seed(0))
    r = plain.transmit(x0, 5.0, torch.Generator().manual_seed(1))
    mu = -(r.symbols.sum((1, 2))[:, None] + 0.01 * r.snr_db[:, None]).expand(5, 2)    # −v_prior(0, 1, ŷ)
    torch.testing.assert_close(mu, -run_once(system.prior_net, r, (5, 2)))
    torch.testing.assert_close(system.prior_estimate(r, (5, 2)), mu)
    start = system.start(mu, (5, 2), torch.Generator().manual_seed(2))
    torch.testing.assert_close(start, sigma * torch.randn(5, 2, generator=torch.Generator().manual_seed(2)) + mu)
    # the Euler map of dx/dt = a x + c is x1 -> A x1 + B with A = (1 - a/K)^K
    a_gain = (1 - 0.5 / steps) ** steps
    b = euler_sample(system.velocity, r, (5, 2), steps, x1=torch.zeros(5, 2))
    gauss = plain.receive(r, Dial(steps=steps), torch.Generator().manual_seed(2)).sample
    pm = system.receive(r, Dial(steps=steps), torch.Generator().manual_seed(2))
    torch.testing.assert_close(pm.sample - b, sigma * (gauss - b) + a_gain * mu)
    torch.testing.assert_close(pm.estimate, mu)                                 # μ(ŷ) handed back with the sample


def test_flow_stage_loss_is_eq10_from_the_posterior_mean_start():
    sigma = 0.3
    system = _pm(sigma)
    system.freeze_prior()
    x0 = ring()(6, torch.Generator().manual_seed(0))
    got = system.plan()[1].loss(x0, 4.0, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    r = system.transmit(x0, 4.0, g)
    eps = torch.randn(6, 2, generator=g)
    t = sample_time(6, g, "cpu", system.time_schedule)
    x1 = sigma * eps - run_once(system.prior_net, r, (6, 2))
    v = system.velocity(interpolate(x0, x1, t), t, r)
    torch.testing.assert_close(got, ((x1 - x0) - v).pow(2).mean())


def test_training_keeps_the_mse_decoder_and_encoder_and_reloads(tmp_path):
    def build():
        torch.manual_seed(0)
        return JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16, depth=1), (2,),
                     prior="posterior_mean", prior_noise=0.1, mse_share=5 / 8)

    cfg = TrainConfig(steps=8, batch_size=16, lr=1e-2, progress=False)
    system = build()
    train(system, ring(), cfg, out_dir=tmp_path)
    warm = build()                                       # the same run stopped at the end of stage "mse"
    train(warm, ring(), cfg, stop_after=5)
    for (name, p), q in zip(system.prior_net.named_parameters(), warm.velocity.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    for p, q in zip(system.encoder.parameters(), warm.encoder.parameters()):
        torch.testing.assert_close(p, q)
    assert all(p.requires_grad for p in system.encoder.parameters())   # the flags it was built with are back
    moved = [not torch.equal(p, q) for p, q in zip(system.velocity.parameters(), system.prior_net.parameters())]
    assert any(moved), "the flow stage did not train the velocity"
    again = build()
    load_trained(again, tmp_path)
    r = system.transmit(ring()(4, torch.Generator().manual_seed(1)), 5.0, torch.Generator().manual_seed(2))
    torch.testing.assert_close(again.receive(r, Dial(), torch.Generator().manual_seed(3)).sample,
                               system.receive(r, Dial(), torch.Generator().manual_seed(3)).sample)


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


def test_pixel_loss_applies_to_the_mse_stage_only_and_reads_cached_latents():
    from jscgc.types import LatentBatch

    torch.manual_seed(0)
    ex = _PoolExtractor()
    inner = JSCGC(_FlatEncoder(), AWGN(), _ConvVelocity(), (4, 4, 4), prior="posterior_mean", mse_share=0.5)
    system = LatentSystem(inner, ex, pixel_loss=True)
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    z0 = ex.encode(images)
    mse, flow = system.plan()
    assert mse.trains == ("inner.",) and flow.trains == ("inner.velocity.",)
    got = mse.loss(images, 5.0, torch.Generator().manual_seed(2))
    r = inner.transmit(z0, 5.0, torch.Generator().manual_seed(2))
    want = (ex.decode_unclamped(inner.one_shot(r, tuple(z0.shape))) - images).pow(2).mean()
    torch.testing.assert_close(got, want)
    latent = (inner.one_shot(r, tuple(z0.shape)) - z0).pow(2).mean()
    assert not torch.allclose(got, latent)              # not the latent MSE
    torch.testing.assert_close(flow.loss(images, 5.0, torch.Generator().manual_seed(2)),
                               inner.flow_loss(z0, 5.0, torch.Generator().manual_seed(2)))
    cached = LatentBatch(images, z0 + 1.0)              # cached latents are used as they are, never re-encoded
    torch.testing.assert_close(flow.loss(cached, 5.0, torch.Generator().manual_seed(2)),
                               inner.flow_loss(z0 + 1.0, 5.0, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="pixel_loss"):
        LatentSystem(JSCGC(_FlatEncoder(), AWGN(), _ConvVelocity(), (4, 4, 4)), ex, pixel_loss=True)


def test_preset_recipe_selects_the_pixel_loss_and_the_anchor():
    from jscgc.methods import build_method
    from jscgc.presets import get_preset

    class _Spec32(_PoolExtractor):
        factor, channels = 8, 32

    pm = dict(prior="posterior_mean", mse_share=0.25, prior_noise=0.1, anchor_lowpass=0)
    system = build_method("jscgc", get_preset("tiny", recipe={**pm, "mse_loss": "pixel"}), _Spec32())
    assert system.pixel_loss and system.inner.prior_net is not None
    assert [s.name for s in system.plan()] == ["mse", "flow"]
    plain = build_method("jscgc", get_preset("tiny", recipe={**pm, "mse_loss": "latent"}), _Spec32())
    assert not plain.pixel_loss and plain.anchor_lowpass == 0
    anchored = build_method("jscgc", get_preset("tiny", recipe={**pm, "anchor_lowpass": 16}), _Spec32())
    assert anchored.anchor_lowpass == 16
    paper = build_method("jscgc-paper", get_preset("tiny"), _Spec32())
    assert [s.name for s in paper.plan()] == ["flow"] and paper.anchor_lowpass == 0 and paper.inner.prior == "gaussian"
    with pytest.raises(ValueError, match="mse_loss"):
        get_preset("tiny", recipe={**pm, "mse_loss": "lpips"})
    with pytest.raises(ValueError, match="warmup_steps"):
        get_preset("tiny", recipe={"warmup_steps": 2})


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
    inner = JSCGC(_FlatEncoder(), AWGN(), _ConvVelocity(), (4, 4, 4), prior="posterior_mean", mse_share=0.5)
    inner.freeze_prior()
    with torch.no_grad():
        inner.prior_net.conv.weight.mul_(-3.0)           # μ(ŷ) differs from what the flow produces
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    plain, anchored = LatentSystem(inner, ex), LatentSystem(inner, ex, anchor_lowpass=8)   # f = 8: the mean colour
    r = plain.transmit(images, 5.0, torch.Generator().manual_seed(2))
    x = plain.receive(r, Dial(steps=4), torch.Generator().manual_seed(3), images.shape).output
    got = anchored.receive(r, Dial(steps=4), torch.Generator().manual_seed(3), images.shape)
    a = got.output
    mu = ex.decode(inner.prior_estimate(r, (2, 4, 4, 4)))
    torch.testing.assert_close(got.estimate, mu)                                      # μ decoded once, handed back
    torch.testing.assert_close(got.sample, x)                                         # the generator's own sample
    assert not torch.allclose(x.mean((2, 3)), mu.mean((2, 3)), atol=1e-3)
    torch.testing.assert_close(a.mean((2, 3)), mu.mean((2, 3)))                       # the estimate's colour
    torch.testing.assert_close(a - a.mean((2, 3), keepdim=True), x - x.mean((2, 3), keepdim=True))  # the detail
    with pytest.raises(ValueError, match="anchor_lowpass"):
        LatentSystem(JSCGC(_FlatEncoder(), AWGN(), _ConvVelocity(), (4, 4, 4)), ex, anchor_lowpass=8)
