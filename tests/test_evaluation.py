"""The evaluation library (jscgc/evaluation.py): which receivers a system is scored as, that every row is the
metric of the right image and reception, that seeds separate images, SNRs and dial points, and that a rerun
reproduces every row."""
import math

import pytest
import torch

from jscgc.evaluation import evaluate, image_seed, points, score, view
from jscgc.metrics import available_metrics
from jscgc.types import Dial, Received, Reception


class _NoisyCopy:
    """A System whose receiver returns the image plus N(0, σ²) noise per draw (σ from the SNR), and whose
    estimate is the image itself: PSNR and diversity then have closed forms to check against."""
    data = "pixels"
    dial_options = frozenset()

    def __init__(self, views=("output",)):
        self.views = views

    def eval(self):
        return self

    def transmit(self, x0, snr_db, generator=None):
        return Received(x0.flatten(1).view(x0.shape[0], -1, 1).expand(-1, -1, 2).clone(),
                        torch.full((x0.shape[0],), float(snr_db)))

    def receive(self, received, dial=Dial(), generator=None, shape=None):
        x = received.symbols[..., 0].reshape(shape)
        sigma = 10 ** (-float(received.snr_db[0]) / 20)
        samples = torch.stack([x + sigma * torch.randn(x.shape, generator=generator) for _ in range(dial.samples)])
        return Reception(samples.mean(0), samples, x)


def _images(n=2, side=16):
    g = torch.Generator().manual_seed(0)
    return [(f"im{k}", 0.25 + 0.5 * torch.rand(3, side, side, generator=g)) for k in range(n)]


def test_points_name_each_view_and_each_dial_point():
    anchored = _NoisyCopy(views=("output", "sample", "estimate"))
    ps = points("jscgc", anchored, 9, (Dial(samples=4),))
    assert [p.receivers for p in ps] == [(("jscgc", "output"), ("jscgc (sample)", "sample"), ("jscgc μ(ŷ)", "estimate")),
                                         (("jscgc [N=4]", "output"),)]
    assert ps[0].dial == Dial(steps=9) and [p.offset for p in ps] == [0, 1]


def test_rows_are_the_metric_of_their_reception_and_reproducible():
    ready, _ = available_metrics(["psnr"])
    images, system = _images(), _NoisyCopy(("output", "estimate"))
    first = evaluate(system, "copy", images, (20.0, 30.0), ready, seed=3, steps=2, samples=2, progress=False)
    again = evaluate(system, "copy", images, (20.0, 30.0), ready, seed=3, steps=2, samples=2, progress=False)
    assert repr(first.rows) == repr(again.rows)                    # every value, NaN diversity included
    assert len(first.rows) == 2 * 2 * 2 * 2                        # SNRs × images × samples × views
    by = {(r["method"], r["snr_db"], r["image"], r["sample"]): r for r in first.rows}
    assert math.isinf(by["copy μ(ŷ)", 20.0, "im0", 0]["psnr"])    # the estimate is the image itself
    for snr in (20.0, 30.0):          # noise power σ² = 10^(-SNR/10), clamping rare: PSNR ≈ SNR (768 values each)
        got = [r["psnr"] for r in first.rows if r["method"] == "copy" and r["snr_db"] == snr]
        assert sum(got) / len(got) == pytest.approx(snr, abs=0.5)


def test_the_first_sample_is_drawn_from_the_image_seed():
    ready, _ = available_metrics(["psnr"])
    (name, image), system = _images(1)[0], _NoisyCopy()
    row = evaluate(system, "copy", [(name, image)], (10.0,), ready, seed=5, steps=1, progress=False).rows[0]
    g = torch.Generator().manual_seed(image_seed(5, name, 10.0))
    x = image[None]
    by_hand = score(x, view(system.receive(system.transmit(x, 10.0, g), Dial(steps=1), g, tuple(x.shape)), "output"),
                    ready)
    assert row["psnr"] == by_hand["psnr"]


def test_a_dial_point_has_its_own_stream_and_measures_diversity():
    ready, _ = available_metrics(["psnr"])
    system = _NoisyCopy()
    rows = evaluate(system, "copy", _images(1), (20.0,), ready, seed=1, steps=1, samples=2,
                    dials=(Dial(steps=1, samples=3),), progress=False).rows
    dialled = [r for r in rows if r["method"] == "copy [steps=1, N=3]"]
    plain = [r for r in rows if r["method"] == "copy"]
    assert len(dialled) == len(plain) == 2
    assert dialled[0]["psnr"] != dialled[1]["psnr"]                # successive samples draw new noise
    # three draws of σ = 0.1 noise: the mean pairwise squared distance is 2σ² = 0.02 per element (768 elements)
    assert dialled[0]["diversity"] == pytest.approx(0.02, rel=0.15)
    assert math.isnan(plain[0]["diversity"])


def test_image_seeds_differ_by_image_snr_and_run():
    seeds = {image_seed(s, n, snr) for s in (0, 1) for n in ("a", "b") for snr in (-5.0, 0.0, 1e-9)}
    assert len(seeds) == 12
