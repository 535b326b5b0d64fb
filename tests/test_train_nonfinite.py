"""A step whose loss or gradient is not finite is skipped (no update, recorded), not allowed to turn every
weight into NaN; a run that keeps producing them stops with a clear error."""
import math

import pytest
import torch
from torch import nn

from jscgc.train import MAX_NONFINITE, TrainConfig, train
from jscgc.types import Stage

CFG = TrainConfig(steps=12, batch_size=4, lr=0.1, grad_clip=1.0, progress=False, seed=0)


class _Probe(nn.Module):
    """loss = mean (w·x − 1)²; on the steps in ``bad`` either the loss is NaN or (``grad``) the loss is
    finite and its gradient is not (√0 has an infinite derivative: 0 · ∞ = NaN)."""

    def __init__(self, bad=(), grad=False):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.bad, self.grad, self.calls = set(bad), grad, 0

    def plan(self):
        return (Stage("fit", 1.0, self.loss),)

    def loss(self, x, snr_db, generator=None):
        self.calls += 1
        value = ((x @ self.w) - 1).pow(2).mean()
        if self.calls in self.bad:
            value = value + (torch.sqrt((self.w * 0).sum()) if self.grad else float("nan"))
        return value


def _data(n, generator):
    return torch.rand(n, 3, generator=generator)


@pytest.mark.parametrize("grad", [False, True], ids=["nan_loss", "nan_gradient"])
def test_a_bad_step_is_skipped_and_the_weights_stay_finite(grad):
    clean, probe = _Probe(), _Probe(bad={5}, grad=grad)
    ref, got = train(clean, _data, CFG), train(probe, _data, CFG)
    assert got.skipped == (5,) and ref.skipped == ()
    assert torch.isfinite(probe.w).all()
    assert math.isnan(got.losses[4]) != grad                       # a NaN loss is recorded as NaN
    assert got.losses[:4] == ref.losses[:4]                        # identical until the bad step
    assert not torch.equal(probe.w, clean.w)                       # one update fewer


def test_a_run_that_keeps_failing_stops_with_a_clear_error():
    with pytest.raises(FloatingPointError, match=f"{MAX_NONFINITE} steps in a row up to step {MAX_NONFINITE + 1}"):
        train(_Probe(bad=range(2, 100)), _data, CFG)
