"""Every registered method, untrained, gives finite outputs at the extreme SNRs a user may ask for
(−30 and +50 dB), on toy vectors and on tiny images; the ILVR-style anchor where its band replacement
is not exact (sides that are no multiple of the factor, a factor as large as the image)."""
import pytest
import torch
import torch.nn.functional as F

from jscgc.latent_system import anchor, lowpass
from jscgc.latents import TAEF2
from jscgc.methods import METHODS, ToySpec, build_method, build_toy
from jscgc.presets import get_preset
from jscgc.types import Dial


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_is_finite_at_extreme_snrs(name):
    torch.manual_seed(0)
    toy = build_toy(name, ToySpec(3, 2, hidden=16, encoder_hidden=8)).eval()
    image = build_method(name, get_preset("tiny"), TAEF2()).eval()
    x_toy, x_img = torch.randn(4, 3), torch.rand(2, 3, 64, 48)
    for snr in (-30.0, 50.0):
        for system, x in ((toy, x_toy), (image, x_img)):
            g = torch.Generator().manual_seed(1)
            with torch.no_grad():
                r = system.receive(system.transmit(x, snr, g), Dial(steps=2), g, tuple(x.shape))
            for field in ("output", "sample"):
                assert torch.isfinite(getattr(r, field)).all(), (name, snr, field)


@pytest.mark.parametrize("h, w, f", [(64, 64, 8), (60, 44, 8), (37, 23, 5), (16, 16, 16)])
def test_anchor_where_the_band_replacement_is_not_exact(h, w, f):
    g = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.rand(2, 3, 4, 4, generator=g), size=(h, w), mode="bilinear", align_corners=False)
    x = (0.25 + 0.5 * smooth + 0.05 * torch.rand(2, 3, h, w, generator=g))      # a sample, inside (0, 1)
    est = (0.25 + 0.5 * torch.rand(2, 3, 1, 1, generator=g)).expand(2, 3, h, w)  # a flat estimate
    a = anchor(x, est, f)
    assert a.shape == x.shape and torch.isfinite(a).all()
    torch.testing.assert_close(anchor(x, x, f), x)                                # nothing to replace
    pool = lambda z: F.avg_pool2d(z, f, ceil_mode=True)                           # noqa: E731
    before = (pool(x) - pool(est)).abs().mean()
    after = (pool(a) - pool(est)).abs().mean()
    assert after < 0.35 * before, (after, before)                                # the coarse band moved to the estimate
    detail = lambda z: z - lowpass(z, f)                                          # noqa: E731
    torch.testing.assert_close(detail(a), detail(x) + detail(lowpass(est - x, f)))  # linear where no clamp acts
