import math

import pytest
import torch

from jscgc.flow import (euler_sample, flow_matching_loss, interpolate, sample_time,
                        target_velocity, time_grid)


def test_path_endpoints_and_velocity(gen):
    x0, x1 = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    assert torch.equal(interpolate(x0, x1, torch.zeros(5)), x0)
    assert torch.equal(interpolate(x0, x1, torch.ones(5)), x1)
    t, h = torch.full((5,), 0.3, dtype=torch.float64), 1e-6
    x0d, x1d = x0.double(), x1.double()
    fd = (interpolate(x0d, x1d, t + h) - interpolate(x0d, x1d, t - h)) / (2 * h)
    torch.testing.assert_close(fd, target_velocity(x0d, x1d))


def test_loss_zero_for_true_velocity(gen):
    x0, x1 = torch.randn(64, 4, generator=gen), torch.randn(64, 4, generator=gen)
    oracle = lambda x_t, t, c: x1 - x0
    assert flow_matching_loss(oracle, x0, None, gen, x1=x1).item() == 0.0
    # and the Eq.-8-style expression (x_t - x0)/t recovers the same target within rounding
    recon = lambda x_t, t, c: (x_t - x0) / t[:, None]
    t = torch.rand(64, generator=gen) * 0.9 + 0.1
    assert flow_matching_loss(recon, x0, None, t=t, x1=x1).item() < 1e-10
    wrong = lambda x_t, t, c: torch.zeros_like(x_t)
    assert flow_matching_loss(wrong, x0, None, gen, x1=x1).item() > 0.5


def test_euler_constant_field_exact():
    x1 = torch.randn(3, 2)
    out = euler_sample(lambda x, t, c: torch.full_like(x, 2.5), None, x1.shape, steps=7, x1=x1)
    torch.testing.assert_close(out, x1 - 2.5)


@pytest.mark.parametrize("steps", [4, 16, 64])
def test_euler_time_dependent_field_first_order(steps):
    # v = 3 t^2 moves x by exactly 1 between t = 0 and t = 1. Euler from t = 1 evaluates v at
    # t_k = 1 - k/n, so it moves x by (3/n) sum_{j=1..n} (j/n)^2 = (n + 1)(2n + 1) / (2 n^2),
    # an error of exactly (3n + 1) / (2 n^2) = O(1/n).
    x1 = torch.zeros(1, 1, dtype=torch.float64)
    out = euler_sample(lambda x, t, c: 3 * t[:, None] ** 2, None, x1.shape, steps, x1=x1,
                       dtype=torch.float64)
    n = steps
    assert math.isclose(-out.item(), (n + 1) * (2 * n + 1) / (2 * n * n), rel_tol=1e-12)
    assert math.isclose(-out.item() - 1.0, (3 * n + 1) / (2 * n * n), rel_tol=1e-9)


def test_euler_linear_field_against_closed_form():
    # dx/dt = a x, integrated from t=1 to t=0: x(0) = x(1) e^{-a}. Euler: x(1) (1 - a/n)^n.
    a, x1 = 0.8, torch.tensor([[1.5]], dtype=torch.float64)
    errs = []
    for n in (10, 20, 40, 80):
        out = euler_sample(lambda x, t, c: a * x, None, x1.shape, n, x1=x1, dtype=torch.float64)
        assert math.isclose(out.item(), 1.5 * (1 - a / n) ** n, rel_tol=1e-12)
        errs.append(abs(out.item() - 1.5 * math.exp(-a)))
    ratios = [errs[i] / errs[i + 1] for i in range(3)]
    assert all(1.8 < r < 2.2 for r in ratios), ratios  # halving the step halves the error


def test_sampler_is_stateless_and_seeded():
    model = lambda x, t, c: x * t[:, None] + c
    a = euler_sample(model, 1.0, (4, 2), 5, torch.Generator().manual_seed(3))
    b = euler_sample(model, 1.0, (4, 2), 5, torch.Generator().manual_seed(3))
    c = euler_sample(model, 1.0, (4, 2), 5, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_time_schedules_and_errors(gen):
    t = sample_time(10000, gen)
    assert 0 <= t.min() and t.max() <= 1 and abs(t.mean().item() - 0.5) < 0.02
    t = sample_time(10000, gen, schedule="logit_normal")
    assert abs(t.median().item() - 0.5) < 0.02 and t.std() < 1 / math.sqrt(12)
    with pytest.raises(ValueError, match="time schedule"):
        sample_time(3, gen, schedule="nope")
    with pytest.raises(ValueError, match="steps"):
        time_grid(0)
