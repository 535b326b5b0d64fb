"""DiffJSCC-style two-stage receiver (after Yang, Zhang, Gao & Gündüz 2025): reconstruct, then refine.

Dataflow::

    x ─CJSCC encoder─► z ─AWGN(SNR)─► ŷ ─CJSCC decoder─► x̃  (stage 1: MSE)
                                                          │ extractor.encode (latent; identity on toy vectors)
                                                          ▼
    x1 ~ N(0, I) ─► Euler steps of v(x_t, t, [z̃, SNR]) ─► ẑ ─decode─► x̂   (stage 2: flow matching, Eq. 10/14)

Yang et al. condition a Stable Diffusion ControlNet on the stage-one image; here stage two is the
same velocity family, objective and Euler sampler as JSCGC, conditioned on the stage-one estimate
(laid out as a ``Received`` of "symbols", so the CA-Adapter or the toy MLP read it unchanged) and on
the SNR. Training follows their two stages, declared by :meth:`DiffJSCC.plan` ("reconstruction" trains
only stage one, "refinement" only the refiner) and run in order by :func:`jscgc.train.train`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jscgc.flow import euler_sample, flow_matching_loss
from jscgc.system import MSEReconstruction
from jscgc.types import Batch, Dial, LatentBatch, Received, Reception, Stage

__all__ = ["DiffJSCC", "as_condition_symbols"]


def as_condition_symbols(x: torch.Tensor) -> torch.Tensor:
    """A stage-one estimate as "symbols" (B, n, 2) for a velocity model's condition path.

    Vectors (B, m) are zero-padded to even m and paired: n = ceil(m/2). Latents (B, C, h, w) get a zero
    channel when C is odd and are laid position-major, ceil(C/2) pairs per position — the layout
    ``symbols_to_grid`` reads back with stride 1.
    """
    b = x.shape[0]
    if x.dim() == 2:
        return F.pad(x, (0, x.shape[1] % 2)).view(b, -1, 2)
    if x.dim() == 4:
        x = F.pad(x, (0, 0, 0, 0, 0, x.shape[1] % 2))
        return x.permute(0, 2, 3, 1).reshape(b, -1, 2)
    raise ValueError(f"DiffJSCC condition: expected (B, m) or (B, C, h, w), got {tuple(x.shape)}")


def _data(batch: Batch) -> torch.Tensor:
    """x (B, *S) of a batch: the tensor itself, or a LatentBatch's images."""
    return batch.images if isinstance(batch, LatentBatch) else batch


class DiffJSCC(nn.Module):
    """Stage one: an :class:`MSEReconstruction` (CJSCC). Stage two: a conditional flow refiner.

    Args:
        stage1: the CJSCC system (encoder, AWGN, decoder) on the data x (B, *S).
        velocity: ``velocity(z_t, t, Received(as_condition_symbols(z̃), SNR)) -> v`` on the refiner's space.
        extractor: frozen ``encode``/``decode`` between x and the refiner's space (a latent
            extractor of :mod:`jscgc.latents`), or None to refine x itself.
        time_schedule: training distribution of t (``jscgc.flow.TIME_SCHEDULES``).
        cached_latents: with an extractor, train on the "latents" source (:attr:`data`): a
            :class:`~jscgc.types.LatentBatch` whose latents the extractor encoded once, which the refinement
            takes as its targets instead of encoding the images again. Only float32 rounding differs from
            ``False``, which encodes every target batch (docs/performance.md, 'CPU training: before and after').

    Both stages take a batch of x (B, *S) or a LatentBatch (its images are x).
    """

    views = ("output",)
    dial_options: frozenset[str] = frozenset()

    def __init__(self, stage1: MSEReconstruction, velocity: nn.Module, extractor: nn.Module | None = None,
                 time_schedule: str = "uniform", refine_share: float = 0.5, cached_latents: bool = True):
        super().__init__()
        if not 0 < refine_share < 1:
            raise ValueError(f"DiffJSCC refine_share: expected a fraction in (0, 1), got {refine_share}")
        self.stage1 = stage1
        self.velocity = velocity
        self.extractor = extractor.eval().requires_grad_(False) if extractor is not None else None
        self.time_schedule = time_schedule
        self.refine_share = refine_share
        self.cached_latents = cached_latents

    @property
    def data(self) -> str:
        """The training source it reads (:class:`~jscgc.types.System`): "latents", the pool whose cached
        latents become the refinement's targets, when it has an extractor and ``cached_latents``; else
        "pixels"."""
        return "latents" if self.extractor is not None and self.cached_latents else "pixels"

    def plan(self) -> tuple[Stage, ...]:
        """("reconstruction": stage one's MSE, only ``stage1`` trains), then ("refinement": Eq. 10 on
        stage one's estimate, only the refiner trains); ``refine_share`` of the budget goes to the second."""
        return (Stage("reconstruction", 1.0 - self.refine_share, self.reconstruction_loss, trains=("stage1.",),
                      estimate=self.stage1.estimate),
                Stage("refinement", self.refine_share, self.refine_loss, trains=("velocity.",)))

    @property
    def encoder(self) -> nn.Module:
        return self.stage1.encoder

    @property
    def channel(self) -> nn.Module:
        return self.stage1.channel

    def train(self, mode: bool = True):
        super().train(mode)
        if self.extractor is not None:
            self.extractor.eval()
        return self

    def _to_space(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.extractor is None else self.extractor.encode(x)

    def space_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape in the refiner's space of data of ``shape``."""
        if self.extractor is None:
            return tuple(shape)
        f = self.extractor.factor
        return (shape[0], self.extractor.channels, shape[-2] // f, shape[-1] // f)

    def condition(self, x_tilde: torch.Tensor, snr_db: torch.Tensor) -> Received:
        """Stage one's estimate x̃ (B, *S), moved to the refiner's space, as a condition."""
        with torch.no_grad():
            if self.extractor is not None:
                x_tilde = self._to_space(x_tilde.clamp(0, 1))
        return Received(as_condition_symbols(x_tilde), snr_db)

    def transmit(self, x0: torch.Tensor, snr_db, generator: torch.Generator | None = None) -> Received:
        return self.stage1.transmit(x0, snr_db, generator)

    def reconstruction_loss(self, batch: Batch, snr_db, generator: torch.Generator | None = None) -> torch.Tensor:
        """Stage "reconstruction": stage one's MSE on the batch's x (B, *S)."""
        return self.stage1.loss(_data(batch), snr_db, generator)

    def _target(self, batch: Batch) -> torch.Tensor:
        """The refiner-space target of a batch: its cached latents (B, C, h, w) when ``cached_latents`` and
        the batch is a LatentBatch, else its x encoded (the identity without an extractor)."""
        if self.extractor is not None and self.cached_latents and isinstance(batch, LatentBatch):
            return batch.latents
        return self._to_space(_data(batch))

    def refine_loss(self, batch: Batch, snr_db, generator: torch.Generator | None = None) -> torch.Tensor:
        """Stage "refinement": Eq. 10 in the refiner's space, conditioned on stage one's estimate."""
        x0 = _data(batch)
        with torch.no_grad():
            received = self.transmit(x0, snr_db, generator)
            target = self._target(batch)
            x_tilde = self.stage1.estimate(received, tuple(x0.shape))
        return flow_matching_loss(self.velocity, target, self.condition(x_tilde, received.snr_db), generator,
                                  schedule=self.time_schedule)

    def receive(self, received: Received, dial: Dial = Dial(), generator: torch.Generator | None = None,
                shape: tuple[int, ...] | None = None) -> Reception:
        """x̂ for data of ``shape``: ``dial.samples`` refinements of stage one's estimate x̃, each with
        ``dial.steps`` Euler steps (Eq. 14), averaged. The reception's estimate is x̃ (stage one's MSE
        estimate, computed once)."""
        if shape is None:
            raise ValueError("DiffJSCC.receive: the data shape (B, *S) is needed")
        dial.check(self.dial_options, type(self).__name__)
        with torch.no_grad():
            x_tilde = self.stage1.estimate(received, tuple(shape))
            condition = self.condition(x_tilde, received.snr_db)
        draws = []
        for _ in range(dial.samples):
            z = euler_sample(self.velocity, condition, self.space_shape(shape), dial.steps, generator,
                             device=received.symbols.device)
            if self.extractor is not None:
                with torch.no_grad():
                    z = self.extractor.decode(z)
            draws.append(z)
        samples = torch.stack(draws)
        return Reception(samples.mean(0), samples, x_tilde)

    def forward(self, x0, snr_db, generator=None, dial: Dial = Dial()) -> torch.Tensor:
        return self.receive(self.transmit(x0, snr_db, generator), dial, generator, x0.shape).output

    def config(self) -> dict[str, Any]:
        vel = self.velocity.config() if callable(getattr(self.velocity, "config", None)) else None
        if vel is None:
            from jscgc.registry import config_of
            vel = config_of(self.velocity)
        return {"class": "DiffJSCC", "stage1": self.stage1.config(), "velocity": vel,
                "extractor": type(self.extractor).__name__ if self.extractor is not None else None,
                "time_schedule": self.time_schedule, "refine_share": self.refine_share}
