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

from typing import Any, NamedTuple

import torch
from torch import nn

from jscgc.channels import FadingOutput, equalize
from jscgc.flow import euler_sample, flow_matching_loss

__all__ = ["Received", "CommSystem", "JSCGC", "MSEReconstruction"]


class Received(NamedTuple):
    """What the receiver sees: symbols (B, n, 2), the SNR in dB (B,), and for fading channels
    the gain per symbol (B, n, 2) (then ``symbols`` are MMSE-equalised); otherwise gain is None."""
    symbols: torch.Tensor
    snr_db: torch.Tensor
    gain: torch.Tensor | None = None


class CommSystem(nn.Module):
    """Encoder and channel shared by every receiver; subclasses define loss and receive."""

    def __init__(self, encoder: nn.Module, channel: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.channel = channel

    def transmit(self, x0: torch.Tensor, snr_db: torch.Tensor | float,
                 generator: torch.Generator | None = None) -> Received:
        """Encode x0 (B, *S) and send it at ``snr_db`` (scalar or (B,)). Differentiable."""
        snr = torch.as_tensor(snr_db, dtype=torch.float32, device=x0.device)
        snr = snr.expand(x0.shape[0]) if snr.dim() == 0 else snr
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


class JSCGC(CommSystem):
    """Encoder -> channel -> conditional flow generator (the paper's system).

    Args:
        encoder: x0 (B, *S) -> unit-power symbols (B, n, 2).
        channel: ``channel(z, snr_db, generator)`` -> received symbols (or FadingOutput).
        velocity: ``velocity(x_t, t, Received) -> v``, shapes (B, *S).
        data_shape: S, the shape of one sample; used by ``receive`` when no shape is given.
        time_schedule: training distribution of t (``jscgc.flow.TIME_SCHEDULES``).
    """

    def __init__(self, encoder: nn.Module, channel: nn.Module, velocity: nn.Module,
                 data_shape: tuple[int, ...], time_schedule: str = "uniform"):
        super().__init__(encoder, channel)
        self.velocity = velocity
        self.data_shape = tuple(data_shape)
        self.time_schedule = time_schedule

    def loss(self, x0, snr_db, generator=None):
        """Eq. 10 with ŷ sent through the channel: gradients reach the encoder."""
        received = self.transmit(x0, snr_db, generator)
        return flow_matching_loss(self.velocity, x0, received, generator,
                                  schedule=self.time_schedule)

    def receive(self, received, generator=None, steps=9, shape=None):
        """Sample x̂ ~ q(x | ŷ) with ``steps`` Euler steps (Eq. 14). Returns (B, *S)."""
        b = received.symbols.shape[0]
        shape = tuple(shape) if shape is not None else (b, *self.data_shape)
        return euler_sample(self.velocity, received, shape, steps, generator,
                            device=received.symbols.device)


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
        x_hat = self.decoder(self.transmit(x0, snr_db, generator), tuple(x0.shape))
        return (x_hat - x0).pow(2).mean()

    def receive(self, received, generator=None, steps=9, shape=None):
        """x̂ = g(ŷ); ``generator`` and ``steps`` are unused (the decoder is deterministic)."""
        with torch.no_grad():
            return self.decoder(received, None if shape is None else tuple(shape))
