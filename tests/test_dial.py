"""The sampling-time dial (jscgc.types.Dial passed to System.receive; jscgc.dial's averaging and diversity):
the dial moves a receiver for one call without changing the system."""
import itertools

import pytest
import torch

from jscgc import AWGN, JSCGC
from jscgc.dial import average_and_diversity, diversity
from jscgc.encoders import MLPEncoder
from jscgc.generators import MLPVelocity
from jscgc.latent_system import anchor
from jscgc.latents import TAEF2
from jscgc.methods import build_method
from jscgc.presets import get_preset
from jscgc.types import Dial


def test_diversity_is_the_mean_pairwise_squared_distance():
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(5, 3, 4, 2, generator=g)                   # N = 5 draws of a batch of 3
    mean, div = average_and_diversity(samples)
    assert torch.allclose(mean, samples.mean(0))
    pairs = [(samples[i] - samples[j]).pow(2).flatten(1).mean(1) for i, j in itertools.combinations(range(5), 2)]
    assert torch.allclose(div, torch.stack(pairs).mean(0), atol=1e-6)
    assert average_and_diversity(samples[:1])[1] is None


def test_diversity_of_gaussian_draws_is_twice_the_variance():
    g = torch.Generator().manual_seed(1)
    samples = 0.5 * torch.randn(400, 2, 64, generator=g)            # variance 0.25 per element
    _, div = average_and_diversity(samples)
    assert torch.allclose(div, torch.full((2,), 0.5), rtol=0.05)


def test_parse_label_and_bad_settings():
    d = Dial.parse("samples=4, prior_noise=0.1,anchor=0")
    assert d == Dial(samples=4, prior_noise=0.1, anchor=0)
    assert d.label() == "N=4, σ=0.1, anchor ÷0" and Dial().label() == "as built"
    for text, match in [("samples=0", "samples=0"), ("stepz=3", "stepz"), ("steps=two", "steps='two'"),
                        ("prior_noise=-1", "prior_noise"), ("anchor=-8", "anchor")]:
        with pytest.raises(ValueError, match=match):
            Dial.parse(text)


def _pm_system(sigma=0.3):
    torch.manual_seed(0)
    return JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16), (2,), prior="posterior_mean",
                 prior_noise=sigma, mse_share=0.5).eval()


def test_default_dial_is_the_system_and_sigma_moves_only_this_call():
    system = _pm_system()
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    received = system.transmit(x, 5.0, torch.Generator().manual_seed(3))
    with torch.no_grad():
        plain = system.receive(received, Dial(steps=5), torch.Generator().manual_seed(4), x.shape)
        built = system.receive(received, Dial(steps=5, prior_noise=0.3), torch.Generator().manual_seed(4), x.shape)
        other = system.receive(received, Dial(steps=5, prior_noise=0.5), torch.Generator().manual_seed(4), x.shape)
        assert torch.equal(plain.output, built.output) and diversity(plain) is None
        assert not torch.equal(plain.output, other.output)
        at_zero = system.receive(received, Dial(samples=3, prior_noise=0.0), torch.Generator().manual_seed(4), x.shape)
        wide = system.receive(received, Dial(samples=3, prior_noise=1.0), torch.Generator().manual_seed(4), x.shape)
    assert system.prior_noise == 0.3                                   # untouched
    assert torch.allclose(diversity(at_zero), torch.zeros(6), atol=1e-10)   # σ = 0: every draw starts at μ(ŷ)
    assert (diversity(wide) > 1e-4).all()
    assert torch.allclose(wide.output, wide.samples.mean(0))


def test_a_dial_setting_the_system_has_no_use_for_is_refused():
    gaussian = JSCGC(MLPEncoder(2, 1, hidden=8), AWGN(), MLPVelocity(2, 1, hidden=16), (2,))
    received = gaussian.transmit(torch.zeros(2, 2), 0.0)
    with pytest.raises(ValueError, match="prior_noise needs"):
        gaussian.receive(received, Dial(prior_noise=0.1), shape=(2, 2))
    with pytest.raises(ValueError, match="anchor needs an image system"):
        gaussian.receive(received, Dial(anchor=8), shape=(2, 2))
    gaussian.receive(received, Dial(anchor=0, guidance=1.0), shape=(2, 2))     # off, and a flow's own setting


def test_image_dial_anchors_the_average_once():
    system = build_method("jscgc", get_preset("tiny"), TAEF2()).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    received = system.transmit(x, 0.0, torch.Generator().manual_seed(6))
    with torch.no_grad():
        raw = system.receive(received, Dial(steps=2, samples=2, anchor=0), torch.Generator().manual_seed(7), x.shape)
        built = system.receive(received, Dial(steps=2, samples=2), torch.Generator().manual_seed(7), x.shape)
    assert raw.samples.shape == (2, 1, 3, 64, 64)
    assert torch.allclose(raw.output, raw.samples.mean(0))
    assert torch.allclose(built.output, anchor(raw.samples.mean(0), raw.estimate, system.anchor_lowpass), atol=1e-6)
    assert system.anchor_lowpass == 8


class _Counting(torch.nn.Module):
    """Wraps a module and counts its forward calls."""
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def test_n_draws_compute_mu_once_and_equal_n_plain_draws():
    """Reusing μ(ŷ) across the N draws changes no random number: N draws in one call equal N successive
    one-draw calls on one generator, with the prior network run once rather than N times."""
    system = _pm_system()
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(8))
    received = system.transmit(x, 0.0, torch.Generator().manual_seed(9))
    system.prior_net = _Counting(system.prior_net)
    with torch.no_grad():
        g = torch.Generator().manual_seed(10)
        plain = torch.stack([system.receive(received, Dial(steps=3), g, x.shape).sample for _ in range(3)])
        assert system.prior_net.calls == 3
        system.prior_net.calls = 0
        dialled = system.receive(received, Dial(steps=3, samples=3), torch.Generator().manual_seed(10), x.shape)
    assert system.prior_net.calls == 1
    assert torch.equal(dialled.samples, plain)


def test_image_draws_decode_the_estimate_once():
    system = build_method("jscgc", get_preset("tiny"), TAEF2()).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(11))
    received = system.transmit(x, 0.0, torch.Generator().manual_seed(12))
    decodes = []
    decode = system.extractor.decode
    system.extractor.decode = lambda z: decodes.append(1) or decode(z)
    with torch.no_grad():
        r = system.receive(received, Dial(steps=1, samples=3), torch.Generator().manual_seed(13), x.shape)
    assert len(decodes) == 3 + 1                      # three samples and one estimate (was 3 + 3)
    assert r.estimate is not None and r.estimate.shape == x.shape


def test_a_missing_image_shape_is_one_clear_error():
    image_system = build_method("jscgc", get_preset("tiny"), TAEF2()).eval()
    with pytest.raises(ValueError, match="the image shape .* is needed"):
        image_system.receive(image_system.transmit(torch.rand(1, 3, 32, 32), 0.0), Dial(samples=2))
