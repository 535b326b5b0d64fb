"""``mambajscc-latent`` is ``mambajscc`` with its MSE on the latent: the same network and weights, and a loss
that an independent computation from the system's parts reproduces (docs/design.md, the methods table)."""
import torch

from jscgc.latents import TAEF2
from jscgc.methods import build_method
from jscgc.presets import get_preset


def _pair():
    systems = []
    for name in ("mambajscc", "mambajscc-latent"):
        torch.manual_seed(0)
        systems.append(build_method(name, get_preset("tiny"), TAEF2()))
    return systems


def test_same_network_and_weights():
    pixel, latent = _pair()
    a, b = pixel.state_dict(), latent.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert pixel.pixel_loss and not latent.pixel_loss


def test_losses_are_the_mse_on_the_image_and_on_the_latent():
    """Each stage loss equals the MSE recomputed from the parts with the same channel draws: on the decoded
    image for ``mambajscc``, on the latent for ``mambajscc-latent``; the two differ."""
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    losses = []
    for system, on_image in zip(_pair(), (True, False)):
        (stage,) = system.plan()
        with torch.no_grad():
            loss = stage.loss(x, 5.0, torch.Generator().manual_seed(2))
            z0 = system.extractor.encode(x)
            z_hat = system.inner.estimate(system.inner.transmit(z0, 5.0, torch.Generator().manual_seed(2)),
                                          tuple(z0.shape))
            expected = ((system.extractor.decode_unclamped(z_hat) - x) if on_image else (z_hat - z0)).pow(2).mean()
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
        losses.append(loss)
    assert not torch.isclose(losses[0], losses[1], rtol=1e-3)
