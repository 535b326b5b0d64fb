"""The guard of docs/design.md, 'Systems': a tiny JSCGC receiver must follow ŷ, not invent images.

Sources are 16x16 colour fields with faint texture (the colour is the "meaning"); after a short
training at 10 dB, samples for different ŷ must differ more than two samples for the same ŷ, and
the low-pass PSNR (÷16: the mean colour) must beat that of samples decoded from a wrong ŷ, which is
what an unconditional generator would give.
"""
import torch

from jscgc import AWGN, JSCGC
from jscgc.encoders.mamba import MambaJSCCEncoder
from jscgc.generators.zimage import CAAdapter, ZImageVelocity, build_backbone
from jscgc.metrics import lowpass_psnr
from jscgc.system import Received
from jscgc.train import TrainConfig, train
from jscgc.types import Dial

S = 16


def colour_fields(n, g):
    colour = torch.rand(n, 3, 1, 1, generator=g)
    return (colour + 0.05 * torch.randn(n, 3, S, S, generator=g)) * 2 - 1


def test_tiny_generator_follows_the_received_signal():
    torch.manual_seed(0)
    bb = build_backbone(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=3, dim=32, n_layers=2,
                        n_refiner_layers=1, n_heads=2, n_kv_heads=2, cap_feat_dim=16, axes_dims=[4, 6, 6],
                        axes_lens=[64, 32, 32])
    velocity = ZImageVelocity(bb, CAAdapter(3, 32, symbols_per_token=2, symbol_stride=16, hidden=32),
                              caption_tokens=8, backbone_mode="full")
    enc = MambaJSCCEncoder(3, 2, patch_size=8, dims=(8, 8), depths=(1, 1), d_state=4, mlp_ratio=1.0)
    system = JSCGC(enc, AWGN(), velocity, (3, S, S), "logit_normal")
    train(system, colour_fields, TrainConfig(steps=150, batch_size=32, lr=3e-3, snr_db=10.0, warmup=10,
                                             progress=False, cpu=True))
    g = torch.Generator().manual_seed(5)
    x = colour_fields(16, g)
    shift = torch.roll(torch.arange(16), 1)
    with torch.no_grad():
        r = system.transmit(x, 10.0, g)
        a, b = system.receive(r, Dial(), g, x.shape).sample, system.receive(r, Dial(), g, x.shape).sample
        wrong = system.receive(Received(r.symbols[shift], r.snr_db), Dial(), g, x.shape).sample
    between = (a - a[shift]).pow(2).mean()
    within = (a - b).pow(2).mean()
    assert between > 2 * within
    to01 = lambda z: ((z + 1) / 2).clamp(0, 1)  # noqa: E731
    follows = lowpass_psnr(to01(x), to01(a), 16).mean()
    unconditional = lowpass_psnr(to01(x), to01(wrong), 16).mean()
    assert follows > unconditional + 3.0
