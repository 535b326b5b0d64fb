"""The small types every part of the package shares (channels, systems, networks, the training loop).

Networks import these instead of the system module, so no network depends on a system.
Shapes use B for the batch, n for complex channel uses, S for one sample's shape
(docs/design.md, 'Symbols and power').
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol, Union

import torch

__all__ = ["ChannelOutput", "Received", "Reception", "LatentBatch", "Stage", "VelocityModel", "Batch", "DataSource"]


class ChannelOutput(NamedTuple):
    """What every channel returns.

    received: the channel's output, same shape as its input — symbols (B, n, 2) for AWGN and fading,
        0/1 (0.5 erased) bits (B, n) for BSC/BEC.
    gain: the per-symbol complex gain (B, n, 2) of a fading channel (the CSI), else None.
    """
    received: torch.Tensor
    gain: torch.Tensor | None = None


class Received(NamedTuple):
    """What the receiver sees: symbols (B, n, 2), the SNR in dB (B,), and for fading channels
    the gain per symbol (B, n, 2) (then ``symbols`` are MMSE-equalised); otherwise gain is None."""
    symbols: torch.Tensor
    snr_db: torch.Tensor
    gain: torch.Tensor | None = None


class Reception(NamedTuple):
    """What a receiver returns for one ŷ, all (B, *S).

    output: what the receiver hands on (the sample, or the sample with the estimate's coarse band
        put back when the system anchors it).
    sample: the receiver's own draw x̂ ~ q(x | ŷ) (for a deterministic decoder, its estimate).
    estimate: the MSE estimate μ(ŷ) the receiver computed on the way (the posterior-mean prior's
        centre, a one-shot estimate, DiffJSCC's stage-one image, an MSE decoder's output), or None
        when it computes none (the paper's Gaussian prior). Computed once per ŷ; callers reuse it.
    """
    output: torch.Tensor
    sample: torch.Tensor
    estimate: torch.Tensor | None


class LatentBatch(NamedTuple):
    """A training batch of images (B, 3, H, W) in [0, 1] with their latents (B, C, h, w) encoded once
    by the frozen extractor (see :class:`jscgc.latent_system.CachedLatents`)."""
    images: torch.Tensor
    latents: torch.Tensor


Batch = Union[torch.Tensor, LatentBatch]
"""What a data source returns: a tensor (B, *S), or a :class:`LatentBatch`."""

DataSource = Callable[[int, torch.Generator], Batch]
"""A training source: ``source(batch_size, generator) -> batch`` (:func:`jscgc.train.train` draws from it)."""


class VelocityModel(Protocol):
    """``v = model(x_t, t, condition)``: x_t (B, *S), t (B,) float32 in [0, 1], a :class:`Received`
    condition; v (B, *S) (paper Eq. 10)."""

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, condition: Received) -> torch.Tensor: ...


@dataclass(frozen=True)
class Stage:
    """One stage of a system's training plan (run by :func:`jscgc.train.train`, in order).

    name: unique within the plan ("mse", "flow", "reconstruction", "refinement", "train").
    share: the stage's fraction of the method's optimiser-step budget; a plan's shares sum to 1.
    loss: ``loss(batch, snr_db (B,), generator) -> scalar`` — the stage's objective.
    trains: prefixes of the system's parameter names trained in this stage ("" = every parameter);
        a parameter frozen when the system was built stays frozen in every stage.
    begin: called once when the stage starts at its first step (not when a run resumes inside it),
        e.g. to copy the trained MSE decoder into the posterior-mean prior; None for nothing.
    estimate: when the stage's loss is the MSE of an estimate, that estimate
        ``estimate(received, shape) -> (B, *S)``; a wrapper may then measure the MSE elsewhere
        (:class:`~jscgc.latent_system.LatentSystem` on decoded pixels). None otherwise.
    """
    name: str
    share: float
    loss: Callable[..., torch.Tensor]
    trains: tuple[str, ...] = ("",)
    begin: Callable[[], None] | None = None
    estimate: Callable[[Received, tuple[int, ...]], torch.Tensor] | None = None

    def describe(self) -> dict:
        """The JSON-able part (what checkpoints and config.json record)."""
        return {"name": self.name, "share": self.share, "trains": list(self.trains)}
