"""Flow matching on the linear path (paper Eq. 5, 10, 14 with T = 1).

Time convention (docs/design.md, 'Time and flow'): t = 0 is data x0, t = 1 is Gaussian noise x1,
``x_t = (1 - t) x0 + t x1`` and the target velocity is ``v = x1 - x0`` (dx_t/dt). Sampling
integrates dx/dt = v from t = 1 down to t = 0.

A velocity model is any callable ``model(x_t, t, condition) -> v`` with x_t of shape
(B, *S), t of shape (B,) and v of shape (B, *S); the condition is passed through untouched.
"""
from __future__ import annotations

from typing import Callable

import torch

from jscgc.types import Received, VelocityModel

__all__ = ["interpolate", "target_velocity", "sample_time", "TIME_SCHEDULES",
           "flow_matching_loss", "euler_sample", "time_grid", "run_once"]


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) matching x's rank."""
    return t.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t x1 (Eq. 5). x0, x1: (B, *S); t: (B,). Returns (B, *S)."""
    tb = _bcast(t, x0)
    return (1 - tb) * x0 + tb * x1


def target_velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """v = x1 - x0, the time derivative of the linear path. Shapes (B, *S)."""
    return x1 - x0


def _uniform(n, generator, device):
    return torch.rand(n, generator=generator, device=device)


def _logit_normal(n, generator, device, mean: float = 0.0, std: float = 1.0):
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))


TIME_SCHEDULES: dict[str, Callable[..., torch.Tensor]] = {
    "uniform": _uniform,           # the paper's t ~ U[0, 1]
    "logit_normal": _logit_normal,  # SD3-style, mass in the middle of the path
}
"""Training-time distributions of t; each takes (n, generator, device) -> (n,) in [0, 1]."""


def sample_time(n: int, generator: torch.Generator | None = None, device="cpu",
                schedule: str = "uniform") -> torch.Tensor:
    """Draw n training times from a named schedule in ``TIME_SCHEDULES``. Returns (n,)."""
    if schedule not in TIME_SCHEDULES:
        raise ValueError(f"time schedule: expected one of {sorted(TIME_SCHEDULES)}, got {schedule!r}")
    return TIME_SCHEDULES[schedule](n, generator, device)


def flow_matching_loss(model: VelocityModel, x0: torch.Tensor, condition: Received,
                       generator: torch.Generator | None = None, t: torch.Tensor | None = None,
                       x1: torch.Tensor | None = None, schedule: str = "uniform") -> torch.Tensor:
    """Conditional flow-matching loss, paper Eq. 10: E ||(x1 - x0) - v(x_t, t, ŷ)||².

    The squared error is averaged over every element (batch and data dimensions), i.e. Eq. 10
    divided by the data dimension, so its scale does not depend on the data size.

    Args:
        model: velocity model ``model(x_t, t, condition)``.
        x0: data, (B, *S).
        condition: passed to the model (e.g. the received signal ŷ).
        generator: RNG for t and x1 when they are not given.
        t: (B,) times; drawn from ``schedule`` if None.
        x1: (B, *S) noise; drawn N(0, I) if None.

    Returns:
        Scalar loss.
    """
    if t is None:
        t = sample_time(x0.shape[0], generator, x0.device, schedule)
    if x1 is None:
        x1 = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    v = model(interpolate(x0, x1, t), t, condition)
    return (target_velocity(x0, x1) - v).pow(2).mean()


def time_grid(steps: int, device="cpu") -> torch.Tensor:
    """Uniform grid from t = 1 to t = 0 with ``steps`` intervals: (steps + 1,)."""
    if steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps}")
    return torch.linspace(1.0, 0.0, steps + 1, device=device)


@torch.no_grad()
def euler_sample(model: VelocityModel, condition: Received, shape: tuple[int, ...], steps: int = 9,
                 generator: torch.Generator | None = None, x1: torch.Tensor | None = None,
                 grid: torch.Tensor | None = None, device="cpu",
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Euler integration of dx/dt = v(x, t, ŷ) from t = 1 to 0 (paper Eq. 14).

    x_{t_{k+1}} = x_{t_k} + (t_{k+1} - t_k) v(x_{t_k}, t_k, ŷ), with t decreasing, so each step
    is x ← x − Δt · v. Stateless: everything it uses is an argument.

    Args:
        model: velocity model.
        condition: passed to the model.
        shape: (B, *S) of the sample.
        steps: number of Euler steps (the paper uses few, e.g. 9); ignored when grid is given.
        generator: RNG for the starting noise x1.
        x1: starting point at t = 1, (B, *S); drawn N(0, I) if None.
        grid: decreasing times from 1 to 0, (K + 1,); uniform with ``steps`` intervals if None.

    Returns:
        x at t = 0, (B, *S).
    """
    x = x1 if x1 is not None else torch.randn(shape, generator=generator, device=device, dtype=dtype)
    grid = time_grid(steps, x.device) if grid is None else grid.to(x.device)
    ones = torch.ones(x.shape[0], device=x.device)      # t stays float32 whatever x's dtype
    for k in range(grid.shape[0] - 1):
        t, t_next = grid[k], grid[k + 1]
        x = x + (t_next - t) * model(x, t * ones, condition)
    return x


def run_once(net: VelocityModel, condition: Received, shape: tuple[int, ...]) -> torch.Tensor:
    """One pass of a velocity model at x = 0, t = 1: ``net(0, 1, ŷ)`` (B, *S) for ``shape`` (B, *S).
    Its negative, −v(0, 1, ŷ), is the one-pass estimate of x0: on the linear path x_1 − v = x0 (Eq. 5)."""
    y = condition.symbols
    x = torch.zeros(shape, dtype=y.dtype, device=y.device)
    return net(x, torch.ones(shape[0], dtype=torch.float32, device=y.device), condition)
