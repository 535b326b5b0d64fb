"""End-to-end communication systems: encoder -> channel -> receiver.

Dataflow of JSCGC (Wu et al. 2026, Fig. 2 / Eq. 10-14)::

    x0 ──encoder──► z (unit power) ──channel(SNR)──► ŷ ──┐
                                                         ▼
    x1 ~ N(0, I) ──► Euler steps of v(x_t, t, ŷ) from t = 1 to 0 ──► x̂ ~ q(x | ŷ)

Training minimises the flow-matching loss (Eq. 10) with ŷ drawn through the channel, so the
gradient flows through the channel into the encoder (Eq. 11). The reconstruction-paradigm
reference, :class:`MSEReconstruction`, shares the encoder and channel and replaces the
generator by a deterministic decoder trained with MSE.

Both implement the same three calls, which every experiment and the training loop use:
``transmit(x0, snr_db, generator) -> Received``, ``loss(x0, snr_db, generator) -> scalar`` and
``receive(received, generator, steps, shape) -> x̂``.
"""
from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
from torch import nn

from jscgc.channels import FadingOutput, equalize
from jscgc.flow import euler_sample, flow_matching_loss

__all__ = ["Received", "CommSystem", "JSCGC", "MSEReconstruction", "Guided", "null_condition", "NULL_SNR_DB",
           "PRIORS"]

NULL_SNR_DB = -30.0
"""SNR of the "nothing received" condition used for ŷ-dropout and guidance (zero symbols)."""

PRIORS = ("gaussian", "oneshot", "posterior_mean")


class Received(NamedTuple):
    """What the receiver sees: symbols (B, n, 2), the SNR in dB (B,), and for fading channels
    the gain per symbol (B, n, 2) (then ``symbols`` are MMSE-equalised); otherwise gain is None."""
    symbols: torch.Tensor
    snr_db: torch.Tensor
    gain: torch.Tensor | None = None


def snr_per_sample(snr_db: torch.Tensor | float, batch: int, device) -> torch.Tensor:
    """The SNR in dB as a (B,) float tensor (a scalar is repeated over the batch)."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    return snr.expand(batch) if snr.dim() == 0 else snr


def run_once(net: nn.Module, received: Received, shape: tuple[int, ...]) -> torch.Tensor:
    """One pass of a velocity-shaped network at x = 0, t = 1: ``net(0, 1, ŷ)``, shape ``shape`` (B, *S)."""
    y = received.symbols
    x = torch.zeros(shape, dtype=y.dtype, device=y.device)
    return net(x, torch.ones(shape[0], dtype=y.dtype, device=y.device), received)


class CommSystem(nn.Module):
    """Encoder and channel shared by every receiver; subclasses define loss and receive."""

    def __init__(self, encoder: nn.Module, channel: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.channel = channel

    def transmit(self, x0: torch.Tensor, snr_db: torch.Tensor | float,
                 generator: torch.Generator | None = None) -> Received:
        """Encode x0 (B, *S) and send it at ``snr_db`` (scalar or (B,)). Differentiable."""
        snr = snr_per_sample(snr_db, x0.shape[0], x0.device)
        out = self.channel(self.encoder(x0), snr, generator)
        if isinstance(out, FadingOutput):
            return Received(equalize(out.received, out.gain, snr), snr, out.gain)
        return Received(out, snr)

    def loss(self, x0: torch.Tensor, snr_db: torch.Tensor | float,
             generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def receive(self, received: Received, generator: torch.Generator | None = None,
                steps: int = 9, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x0: torch.Tensor, snr_db: torch.Tensor | float,
                generator: torch.Generator | None = None, steps: int = 9) -> torch.Tensor:
        """Transmit and receive: x0 (B, *S) -> x̂ (B, *S)."""
        return self.receive(self.transmit(x0, snr_db, generator), generator, steps, x0.shape)

    def config(self) -> dict[str, Any]:
        """Registry configs of the parts, enough to rebuild the system (see ``build_system``)."""
        from jscgc.registry import config_of

        parts = {name: m.config() if callable(m.config) else config_of(m)
                 for name, m in self.named_children() if hasattr(m, "config")}
        return {"class": type(self).__name__, "channel": type(self.channel).__name__, **parts}


def null_condition(received: Received) -> Received:
    """"Nothing received": zero symbols at ``NULL_SNR_DB`` (the condition of an unconditional model)."""
    return Received(torch.zeros_like(received.symbols), torch.full_like(received.snr_db, NULL_SNR_DB))


class Guided(nn.Module):
    """Classifier-free guidance (Ho & Salimans 2022) of a velocity model trained with ŷ-dropout:
    v = v(x, t, ∅) + w (v(x, t, ŷ) − v(x, t, ∅)); w = 1 is the plain conditional model."""

    def __init__(self, velocity: nn.Module, scale: float):
        super().__init__()
        self.velocity, self.scale = velocity, scale

    def forward(self, x_t, t, received: Received):
        both = Received(torch.cat([received.symbols, torch.zeros_like(received.symbols)]),
                        torch.cat([received.snr_db, torch.full_like(received.snr_db, NULL_SNR_DB)]))
        v_cond, v_null = self.velocity(torch.cat([x_t, x_t]), torch.cat([t, t]), both).chunk(2)
        return v_null + self.scale * (v_cond - v_null)


class JSCGC(CommSystem):
    """Encoder -> channel -> conditional flow generator (the paper's system).

    Args:
        encoder: x0 (B, *S) -> unit-power symbols (B, n, 2).
        channel: ``channel(z, snr_db, generator)`` -> received symbols (or FadingOutput).
        velocity: ``velocity(x_t, t, Received) -> v``, shapes (B, *S).
        data_shape: S, the shape of one sample; used by ``receive`` when no shape is given.
        time_schedule: training distribution of t (``jscgc.flow.TIME_SCHEDULES``).

    Training-recipe options (all off by default: the paper's plain Eq. 10; see docs/recipe_search.md):
        cond_dropout: fraction of training samples whose ŷ is replaced by :func:`null_condition`.
        guidance: classifier-free guidance scale w at sampling (needs ``cond_dropout`` > 0 to mean
            anything).
        prior: where the Euler steps start (t = 1):
            ``"gaussian"``: x1 ~ N(0, I), the paper's.
            ``"oneshot"``: x1 ~ N(μ(ŷ), I) with μ(ŷ) = −v(0, 1, ŷ), the network's own one-pass estimate,
            trained with MSE next to Eq. 10; the flow transports the residual around an MSE estimate.
            ``"posterior_mean"``: x1 = μ(ŷ) + σ ε with a small σ (``prior_noise``), after Posterior-Mean
            Rectified Flow (Ohayon et al., ICLR 2025): the "warmup" stage trains encoder and network as
            an MSE decoder μ(ŷ) = −v(0, 1, ŷ); entering "flow", a frozen copy of that decoder
            (``prior_net``) and the encoder are fixed and the network, initialised from the decoder,
            learns the flow from μ(ŷ) + σ ε to the data. The low frequencies, which the MSE estimate
            gets right, are kept; the flow adds what the estimate averaged away. Needs warmup_steps > 0
            and holds a second copy of the network.
        prior_noise: σ of the ``"posterior_mean"`` prior (data units; the flow's start must not hide
            the estimate).
        warmup_steps: > 0 adds a first training stage ("warmup") of that many steps in which only μ(ŷ)
            is trained, with MSE (an MSE decoder in the flow's parameterisation); then stage "flow".
            :class:`~jscgc.latent_system.LatentSystem` with ``pixel_loss`` computes that MSE on the
            decoded image.
    """

    def __init__(self, encoder: nn.Module, channel: nn.Module, velocity: nn.Module,
                 data_shape: tuple[int, ...], time_schedule: str = "uniform", cond_dropout: float = 0.0,
                 guidance: float = 1.0, prior: str = "gaussian", warmup_steps: int = 0,
                 prior_noise: float = 0.1):
        super().__init__(encoder, channel)
        if prior not in PRIORS or not 0 <= cond_dropout < 1 or warmup_steps < 0 or prior_noise < 0:
            raise ValueError(f"JSCGC: prior in {PRIORS}, cond_dropout in [0, 1), warmup_steps >= 0, prior_noise >= 0 "
                             f"expected, got {prior!r}, {cond_dropout}, {warmup_steps}, {prior_noise}")
        if prior == "posterior_mean" and not warmup_steps:
            raise ValueError("JSCGC: prior 'posterior_mean' needs warmup_steps > 0 (the stage that trains μ(ŷ))")
        self.velocity = velocity
        self.data_shape = tuple(data_shape)
        self.time_schedule = time_schedule
        self.cond_dropout, self.guidance, self.prior, self.prior_noise = cond_dropout, guidance, prior, prior_noise
        self.stages = ("warmup", "flow") if warmup_steps else ()
        self.stage_steps = {"warmup": warmup_steps} if warmup_steps else {}
        self.stage = "flow"
        # the frozen MSE decoder of the posterior-mean prior; filled when training enters "flow"
        self.prior_net = copy.deepcopy(velocity).requires_grad_(False) if prior == "posterior_mean" else None
        self._trainable = {name for name, p in self.encoder.named_parameters() if p.requires_grad}

    def set_stage(self, stage: str) -> None:
        """Switch objective. With the posterior-mean prior, going from "warmup" to "flow" copies the
        trained MSE decoder into ``prior_net`` and freezes the encoder (the prior must keep seeing the ŷ
        it was trained on); "warmup" makes the encoder trainable again."""
        if stage not in ("warmup", "flow"):
            raise ValueError(f"JSCGC stage: expected 'warmup' or 'flow', got {stage!r}")
        if self.prior_net is not None:
            if self.stage == "warmup" and stage == "flow":
                self.prior_net.load_state_dict(self.velocity.state_dict())
            for name, p in self.encoder.named_parameters():
                p.requires_grad_(stage == "warmup" and name in self._trainable)
        self.stage = stage

    def one_shot(self, received: Received, shape: tuple[int, ...]) -> torch.Tensor:
        """μ(ŷ) = −v(0, t = 1, ŷ): the flow network's one-pass estimate of x0, (B, *S)."""
        return -run_once(self.velocity, received, shape)

    def estimate(self, received: Received, shape: tuple[int, ...]) -> torch.Tensor:
        """The estimate the "warmup" stage trains with MSE: μ(ŷ), (B, *S)."""
        return self.one_shot(received, shape)

    @property
    def trains_estimate(self) -> bool:
        """True while the objective is the MSE of :meth:`estimate` (the "warmup" stage)."""
        return self.stage == "warmup"

    def prior_mean(self, received: Received, shape: tuple[int, ...]) -> torch.Tensor:
        """The frozen MSE estimate μ(ŷ) of the posterior-mean prior, (B, *S) (no gradients)."""
        if self.prior_net is None:
            raise ValueError(f"JSCGC.prior_mean: needs prior 'posterior_mean', this system has {self.prior!r}")
        with torch.no_grad():
            return -run_once(self.prior_net, received, shape)

    def start(self, received: Received, shape: tuple[int, ...], generator=None) -> torch.Tensor:
        """x1, the start of the Euler steps at t = 1 (B, *S), drawn from ``prior`` given ŷ."""
        y = received.symbols
        eps = torch.randn(shape, generator=generator, device=y.device)
        if self.prior == "gaussian":
            return eps
        with torch.no_grad():
            if self.prior == "oneshot":
                return eps + self.one_shot(received, shape)
            return self.prior_noise * eps + self.prior_mean(received, shape)

    def loss(self, x0, snr_db, generator=None):
        """Eq. 10 with ŷ sent through the channel: gradients reach the encoder."""
        received = self.transmit(x0, snr_db, generator)
        if self.stage == "warmup":
            return (self.estimate(received, x0.shape) - x0).pow(2).mean()
        extra = 0.0
        if self.prior == "oneshot":
            x1 = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            mu = self.one_shot(received, x0.shape)
            extra = (mu - x0).pow(2).mean()
            x1 = x1 + mu.detach()
        else:
            x1 = self.start(received, tuple(x0.shape), generator)
        cond = received
        if self.cond_dropout > 0:
            drop = torch.rand(x0.shape[0], generator=generator, device=x0.device) < self.cond_dropout
            null = null_condition(received)
            mask = drop.view(-1, *([1] * (received.symbols.dim() - 1)))
            cond = Received(torch.where(mask, null.symbols, received.symbols),
                            torch.where(drop, null.snr_db, received.snr_db), received.gain)
        return flow_matching_loss(self.velocity, x0, cond, generator, x1=x1, schedule=self.time_schedule) + extra

    def receive(self, received, generator=None, steps=9, shape=None):
        """Sample x̂ ~ q(x | ŷ) with ``steps`` Euler steps (Eq. 14). Returns (B, *S)."""
        b = received.symbols.shape[0]
        shape = tuple(shape) if shape is not None else (b, *self.data_shape)
        device = received.symbols.device
        x1 = self.start(received, shape, generator)
        velocity = self.velocity if self.guidance == 1.0 else Guided(self.velocity, self.guidance)
        return euler_sample(velocity, received, shape, steps, generator, x1=x1, device=device)


class MSEReconstruction(CommSystem):
    """Encoder -> channel -> deterministic decoder trained with MSE (the reconstruction paradigm).

    Args:
        decoder: ``decoder(Received, shape) -> x̂`` of shape (B, *S); ``shape`` is (B, *S) or None
            (decoders of variable-size images need it).
    """

    def __init__(self, encoder: nn.Module, channel: nn.Module, decoder: nn.Module):
        super().__init__(encoder, channel)
        self.decoder = decoder

    def loss(self, x0, snr_db, generator=None):
        """Mean squared error per element between x0 and the decoder's estimate."""
        x_hat = self.estimate(self.transmit(x0, snr_db, generator), tuple(x0.shape))
        return (x_hat - x0).pow(2).mean()

    def receive(self, received, generator=None, steps=9, shape=None):
        """x̂ = g(ŷ); ``generator`` and ``steps`` are unused (the decoder is deterministic)."""
        with torch.no_grad():
            return self.estimate(received, shape)

    def estimate(self, received: Received, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """x̂ = g(ŷ) with gradients (what ``loss`` compares with x0)."""
        return self.decoder(received, None if shape is None else tuple(shape))

    trains_estimate = True
