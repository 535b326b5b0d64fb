"""End-to-end communication systems: encoder -> channel -> receiver.

Dataflow of JSCGC (Wu et al. 2026, Fig. 2 / Eq. 10-14)::

    x0 ──encoder──► z (unit power) ──channel(SNR)──► ŷ ──┐
                                                         ▼
    x1 ~ prior(ŷ) ──► Euler steps of v(x_t, t, ŷ) from t = 1 to 0 ──► x̂ ~ q(x | ŷ)

Training minimises the flow-matching loss (Eq. 10) with ŷ drawn through the channel, so the
gradient flows through the channel into the encoder (Eq. 11). The reconstruction-paradigm
reference, :class:`MSEReconstruction`, shares the encoder and channel and replaces the
generator by a deterministic decoder trained with MSE.

Every system answers the same calls, which every experiment and the training loop use:
``transmit(x0, snr_db, generator) -> Received``, ``plan() -> tuple[Stage, ...]`` (what trains, in
which order, with which objective; run by :func:`jscgc.train.train`) and
``receive(received, dial, generator, shape) -> Reception`` (N samples at the operating point ``dial``, their
average, and the MSE estimate μ(ŷ) computed on the way, once): the :class:`~jscgc.types.System` protocol.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from jscgc.channels import equalize
from jscgc.flow import euler_sample, flow_matching_loss, run_once
from jscgc.guidance import NULL_SNR_DB, Guided, drop_condition, null_condition
from jscgc.types import Dial, Received, Reception, Stage
from jscgc.windows import Windowed

__all__ = ["Received", "Reception", "CommSystem", "JSCGC", "MSEReconstruction", "Guided", "null_condition",
           "NULL_SNR_DB", "PRIORS", "snr_per_sample"]

PRIORS = ("gaussian", "oneshot", "posterior_mean")


def snr_per_sample(snr_db: torch.Tensor | float, batch: int, device) -> torch.Tensor:
    """The SNR in dB as a (B,) float tensor (a scalar is repeated over the batch)."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    return snr.expand(batch) if snr.dim() == 0 else snr


class CommSystem(nn.Module):
    """Encoder and channel shared by every receiver; subclasses define ``plan`` and ``receive``
    (a :class:`~jscgc.types.System` on pixels or vectors, scored by its output)."""

    data = "pixels"
    views = ("output",)
    dial_options: frozenset[str] = frozenset()

    def __init__(self, encoder: nn.Module, channel: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.channel = channel

    def transmit(self, x0: torch.Tensor, snr_db: torch.Tensor | float,
                 generator: torch.Generator | None = None) -> Received:
        """Encode x0 (B, *S) and send it at ``snr_db`` (scalar or (B,)). Differentiable.
        With a fading channel the symbols are MMSE-equalised and the gain kept as CSI."""
        snr = snr_per_sample(snr_db, x0.shape[0], x0.device)
        out = self.channel(self.encoder(x0), snr, generator)
        if out.gain is None:
            return Received(out.received, snr)
        return Received(equalize(out.received, out.gain, snr), snr, out.gain)

    def plan(self) -> tuple[Stage, ...]:
        raise NotImplementedError

    def receive(self, received: Received, dial: Dial = Dial(), generator: torch.Generator | None = None,
                shape: tuple[int, ...] | None = None) -> Reception:
        raise NotImplementedError

    def forward(self, x0: torch.Tensor, snr_db: torch.Tensor | float,
                generator: torch.Generator | None = None, dial: Dial = Dial()) -> torch.Tensor:
        """Transmit and receive: x0 (B, *S) -> the receiver's output (B, *S)."""
        return self.receive(self.transmit(x0, snr_db, generator), dial, generator, x0.shape).output

    def config(self) -> dict[str, Any]:
        """Registry configs of the parts (each rebuilt by :func:`jscgc.registry.build`), recorded in every
        checkpoint's state.json."""
        from jscgc.registry import config_of

        parts = {name: m.config() if callable(m.config) else config_of(m)
                 for name, m in self.named_children() if hasattr(m, "config")}
        return {"class": type(self).__name__, "channel": type(self.channel).__name__, **parts}


class JSCGC(CommSystem):
    """Encoder -> channel -> conditional flow generator (the paper's system).

    Args:
        encoder: x0 (B, *S) -> unit-power symbols (B, n, 2).
        channel: ``channel(z, snr_db, generator)`` -> :class:`~jscgc.types.ChannelOutput`.
        velocity: ``velocity(x_t, t, Received) -> v``, shapes (B, *S).
        data_shape: S, the shape of one sample; used by ``receive`` when no shape is given.
        time_schedule: training distribution of t (``jscgc.flow.TIME_SCHEDULES``).

    Recipe options (defaults: the paper as written — Gaussian start, Eq. 10 end to end, one stage;
    docs/recipe_search.md measures the others):
        cond_dropout: fraction of training samples whose ŷ is replaced by :func:`null_condition` (1: the
            generator alone, trained without ŷ; sample it with guidance w = 0).
        guidance: classifier-free guidance scale w at sampling (needs ``cond_dropout`` > 0 to mean
            anything).
        prior: where the Euler steps start (t = 1):
            ``"gaussian"``: x1 ~ N(0, I), the paper's.
            ``"oneshot"``: x1 ~ N(μ(ŷ), I) with μ(ŷ) = −v(0, 1, ŷ), the network's own one-pass estimate,
            trained with MSE next to Eq. 10; the flow transports the residual around an MSE estimate.
            ``"posterior_mean"``: x1 = μ(ŷ) + σ ε with a small σ (``prior_noise``), after Posterior-Mean
            Rectified Flow (Ohayon et al., ICLR 2025): stage "mse" trains encoder and network as an MSE
            decoder μ(ŷ) = −v(0, 1, ŷ); stage "flow" begins by copying that decoder into the frozen
            ``prior_net`` and trains only the network, initialised from the decoder, to carry
            μ(ŷ) + σ ε to the data (the encoder is not trained: the prior must keep seeing the ŷ it
            was trained on). Needs ``mse_share`` > 0 and holds a second copy of the network.
        prior_noise: σ of the ``"posterior_mean"`` prior (data units).
        window: the receive window in encoder tokens (0: the whole grid), used when the dial names none
            (``Dial.window``; docs/design.md, 'Windowed reception'). Receive-only: training never sees it.
        mse_share: > 0 puts a first stage "mse" with that share of the training budget before stage
            "flow", in which only μ(ŷ) is trained, with MSE (an MSE decoder in the flow's
            parameterisation). :class:`~jscgc.latent_system.LatentSystem` with ``pixel_loss`` measures
            that MSE on the decoded image.
    """

    def __init__(self, encoder: nn.Module, channel: nn.Module, velocity: nn.Module,
                 data_shape: tuple[int, ...], time_schedule: str = "uniform", cond_dropout: float = 0.0,
                 guidance: float = 1.0, prior: str = "gaussian", mse_share: float = 0.0,
                 prior_noise: float = 0.1, window: int = 0):
        super().__init__(encoder, channel)
        if prior not in PRIORS or not 0 <= cond_dropout <= 1 or not 0 <= mse_share < 1 or prior_noise < 0:
            raise ValueError(f"JSCGC: prior in {PRIORS}, cond_dropout in [0, 1], mse_share in [0, 1), "
                             f"prior_noise >= 0 expected, got {prior!r}, {cond_dropout}, {mse_share}, {prior_noise}")
        Dial(window=window)                      # a bad window is the Dial's ValueError, naming it
        if prior == "posterior_mean" and not mse_share:
            raise ValueError("JSCGC: prior 'posterior_mean' needs mse_share > 0 (the stage that trains μ(ŷ))")
        self.velocity = velocity
        self.data_shape = tuple(data_shape)
        self.time_schedule = time_schedule
        self.cond_dropout, self.guidance, self.prior, self.prior_noise = cond_dropout, guidance, prior, prior_noise
        self.mse_share, self.window = mse_share, window
        self.window_batch: int | None = None     # samples per velocity call when windowed (None: all windows at once)
        options = {"guidance", "prior_noise"} if prior == "posterior_mean" else {"guidance"}
        # windowed reception needs a token grid: an encoder with a stride on a (C, H, W) latent
        self.dial_options = frozenset(options | ({"window"} if self.token_stride() else set()))
        if window and "window" not in self.dial_options:
            raise ValueError(f"JSCGC: window={window} needs an encoder with a token stride on (C, H, W) data")
        # the frozen MSE decoder of the posterior-mean prior; filled when stage "flow" begins
        self.prior_net = copy.deepcopy(velocity).requires_grad_(False) if prior == "posterior_mean" else None

    def plan(self) -> tuple[Stage, ...]:
        """[("mse", mse_share, MSE of μ(ŷ), everything)] then ("flow", the rest, Eq. 10, everything, or only
        the network after copying μ into the prior for the posterior-mean prior)."""
        if not self.mse_share:
            return (Stage("flow", 1.0, self.flow_loss),)
        pm = self.prior_net is not None
        return (Stage("mse", self.mse_share, self.mse_loss, estimate=self.one_shot),
                Stage("flow", 1.0 - self.mse_share, self.flow_loss, trains=("velocity.",) if pm else ("",),
                      begin=self.freeze_prior if pm else None))

    def freeze_prior(self) -> None:
        """Begin of stage "flow" (posterior-mean prior): the trained MSE decoder becomes the frozen prior."""
        self.prior_net.load_state_dict(self.velocity.state_dict())

    def token_stride(self) -> int | None:
        """Latent positions per encoder-token side (the encoder's stride), or None when the data is no
        (C, H, W) grid of tokens (vectors)."""
        stride = getattr(self.encoder, "stride", None)
        return stride if isinstance(stride, int) and len(self.data_shape) == 3 else None

    def windowed(self, net: nn.Module, window: int | None) -> nn.Module:
        """``net`` itself (window None or 0), or ``net`` run on overlapping windows of ``window`` encoder tokens
        and fused (:class:`~jscgc.windows.Windowed`; docs/design.md, 'Windowed reception')."""
        if not window:
            return net
        patch = getattr(self.velocity, "patch_size", 1)
        return Windowed(net, window, self.token_stride(), patch, self.window_batch)

    def one_shot(self, received: Received, shape: tuple[int, ...]) -> torch.Tensor:
        """μ(ŷ) = −v(0, t = 1, ŷ): the flow network's one-pass estimate of x0, (B, *S)."""
        return -run_once(self.velocity, received, shape)

    def prior_estimate(self, received: Received, shape: tuple[int, ...],
                       window: int | None = None) -> torch.Tensor | None:
        """The μ(ŷ) the prior is centred on, (B, *S), without gradients: the frozen MSE decoder's
        (posterior-mean prior), the network's one-pass estimate (one-shot prior), or None (Gaussian);
        with ``window`` (encoder tokens), that pass fused over windows as the Euler steps are."""
        if self.prior == "gaussian":
            return None
        net = self.prior_net if self.prior_net is not None else self.velocity
        with torch.no_grad():
            return -run_once(self.windowed(net, window), received, shape)

    def start(self, mu: torch.Tensor | None, shape: tuple[int, ...], generator=None, device=None,
              prior_noise: float | None = None) -> torch.Tensor:
        """x1, the start of the Euler steps at t = 1 (B, *S): ε, μ + ε (one-shot) or μ + σ ε (posterior mean,
        σ = ``prior_noise``, by default the one trained with)."""
        eps = torch.randn(shape, generator=generator, device=device if mu is None else mu.device)
        if mu is None:
            return eps
        if self.prior != "posterior_mean":
            return mu + eps
        return mu + (self.prior_noise if prior_noise is None else prior_noise) * eps

    def mse_loss(self, x0, snr_db, generator=None):
        """Stage "mse": E ||μ(ŷ) − x0||² with ŷ through the channel (gradients reach the encoder)."""
        received = self.transmit(x0, snr_db, generator)
        return (self.one_shot(received, x0.shape) - x0).pow(2).mean()

    def flow_loss(self, x0, snr_db, generator=None):
        """Eq. 10 with ŷ sent through the channel: gradients reach the encoder (when it trains)."""
        received = self.transmit(x0, snr_db, generator)
        shape = tuple(x0.shape)
        if self.prior == "oneshot":    # the one-shot estimate trains next to the flow (and centres its start)
            mu = self.one_shot(received, shape)
            x1 = self.start(mu.detach(), shape, generator)
            extra = (mu - x0).pow(2).mean()
        else:
            x1, extra = self.start(self.prior_estimate(received, shape), shape, generator, x0.device), 0.0
        cond = drop_condition(received, self.cond_dropout, generator) if self.cond_dropout > 0 else received
        return flow_matching_loss(self.velocity, x0, cond, generator, x1=x1, schedule=self.time_schedule) + extra

    def receive(self, received: Received, dial: Dial = Dial(), generator: torch.Generator | None = None,
                shape: tuple[int, ...] | None = None) -> Reception:
        """``dial.samples`` draws x̂ ~ q(x | ŷ), each ``dial.steps`` Euler steps (Eq. 14) from its own start of
        the prior (drawn in turn from ``generator``), all from one μ(ŷ); (B, *S) each. ``dial.prior_noise``
        (posterior-mean prior) and ``dial.guidance`` override, for this call only, the σ and w the system
        was built with. ``dial.window`` fuses every velocity call (μ(ŷ) included) over windows of that many
        encoder tokens (guidance inside each window; None: the window built with, 0: the whole grid)."""
        dial.check(self.dial_options, type(self).__name__)
        shape = tuple(shape) if shape is not None else (received.symbols.shape[0], *self.data_shape)
        window = self.window if dial.window is None else dial.window
        mu = self.prior_estimate(received, shape, window)
        w = self.guidance if dial.guidance is None else dial.guidance
        velocity = self.windowed(self.velocity if w == 1.0 else Guided(self.velocity, w), window)
        draws = [euler_sample(velocity, received, shape, dial.steps, generator,
                              x1=self.start(mu, shape, generator, received.symbols.device, dial.prior_noise))
                 for _ in range(dial.samples)]
        samples = torch.stack(draws)
        return Reception(samples.mean(0), samples, mu)


class MSEReconstruction(CommSystem):
    """Encoder -> channel -> deterministic decoder trained with MSE (the reconstruction paradigm).

    Args:
        decoder: ``decoder(Received, shape) -> x̂`` of shape (B, *S); ``shape`` is (B, *S) or None
            (decoders of variable-size images need it).
    """

    def __init__(self, encoder: nn.Module, channel: nn.Module, decoder: nn.Module):
        super().__init__(encoder, channel)
        self.decoder = decoder

    def plan(self) -> tuple[Stage, ...]:
        """One stage, "train": the MSE of the decoder's estimate, every part trained."""
        return (Stage("train", 1.0, self.loss, estimate=self.estimate),)

    def loss(self, x0, snr_db, generator=None):
        """Mean squared error per element between x0 and the decoder's estimate."""
        x_hat = self.estimate(self.transmit(x0, snr_db, generator), tuple(x0.shape))
        return (x_hat - x0).pow(2).mean()

    def receive(self, received: Received, dial: Dial = Dial(), generator: torch.Generator | None = None,
                shape: tuple[int, ...] | None = None) -> Reception:
        """x̂ = g(ŷ), which is also the estimate (and each of the ``dial.samples`` "draws"); the generator
        and the Euler steps are unused."""
        dial.check(self.dial_options, type(self).__name__)
        with torch.no_grad():
            x_hat = self.estimate(received, shape)
        return Reception(x_hat, x_hat.expand(dial.samples, *x_hat.shape), x_hat)

    def estimate(self, received: Received, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """x̂ = g(ŷ) with gradients (what ``loss`` compares with x0)."""
        return self.decoder(received, None if shape is None else tuple(shape))
