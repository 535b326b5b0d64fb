"""The small types every part of the package shares (channels, systems, networks, the training loop).

Networks import these instead of the system module, so no network depends on a system.
Shapes use B for the batch, n for complex channel uses, S for one sample's shape
(docs/design.md, 'Symbols and power').
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, ClassVar, NamedTuple, Protocol, Union

import torch

__all__ = ["ChannelOutput", "Received", "Reception", "LatentBatch", "Stage", "VelocityModel", "Batch", "DataSource",
           "Dial", "System"]


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
    """What a receiver returns for one ŷ at one :class:`Dial`.

    output: (B, *S) what the receiver hands on: the average of its N samples (the sample itself for
        N = 1), with the estimate's coarse band put back when the system anchors it.
    samples: (N, B, *S) the receiver's own draws x̂ ~ q(x | ŷ), un-anchored (a deterministic decoder
        repeats its estimate N times).
    estimate: (B, *S) the MSE estimate μ(ŷ) the receiver computed on the way (the posterior-mean prior's
        centre, a one-shot estimate, DiffJSCC's stage-one image, an MSE decoder's output), or None when it
        computes none (the paper's Gaussian prior). Computed once per ŷ for all N draws.
    """
    output: torch.Tensor
    samples: torch.Tensor
    estimate: torch.Tensor | None

    @property
    def sample(self) -> torch.Tensor:
        """The first draw (B, *S)."""
        return self.samples[0]


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


@dataclass(frozen=True)
class Dial:
    """One operating point of a receiver, chosen at sampling time: the distortion–perception dial
    (docs/theory.md, 'The distortion–perception frontier'). Passed to every ``System.receive``.

    ========== ======================================================================================
    steps      Euler steps of Eq. 14 (few steps: smoother, closer to the mean; many: closer to the flow)
    samples    N posterior samples per ŷ, averaged into the output. N = 1 is posterior sampling (MSE =
               2·MMSE for an exact sampler); the average of N exact samples has MSE (1 + 1/N)·MMSE
    prior_noise σ of the posterior-mean prior's start μ(ŷ) + σ ε (None: the σ trained with)
    guidance   classifier-free guidance w (None: as built; meaningful for a system trained with ŷ-dropout)
    anchor     the ÷f coarse band of μ(ŷ) put into the output (None: as built, 0: off); images only
    window     receive in overlapping windows of this side in encoder tokens, fused at every velocity call
               (None: as built, 0: the whole grid); the stride is window // 2 tokens (at least 1) and the last
               window lies flush with the far edge, so every position is covered; each position's velocity is
               the mean over the windows that hold it, each window conditioned on its own part of ŷ
               (:mod:`jscgc.windows`); image JSCGC systems only
    ========== ======================================================================================

    ``None`` means "as the system was built"; a bad value is a ValueError naming the setting.
    """
    steps: int = 9
    samples: int = 1
    prior_noise: float | None = None
    guidance: float | None = None
    anchor: int | None = None
    window: int | None = None

    #: the settings a system may or may not honour (``System.dial_options``); steps and samples every one does
    OPTIONAL: ClassVar[tuple[str, ...]] = ("prior_noise", "guidance", "anchor", "window")
    #: the optional settings whose 0 means "off", accepted by every system
    OFF_AT_ZERO: ClassVar[tuple[str, ...]] = ("anchor", "window")

    def __post_init__(self):
        bad = []
        if not (isinstance(self.steps, int) and self.steps >= 1):
            bad.append(f"steps={self.steps!r} (an integer >= 1)")
        if not (isinstance(self.samples, int) and self.samples >= 1):
            bad.append(f"samples={self.samples!r} (an integer >= 1)")
        if self.prior_noise is not None and not (math.isfinite(self.prior_noise) and self.prior_noise >= 0):
            bad.append(f"prior_noise={self.prior_noise!r} (a finite σ >= 0)")
        if self.guidance is not None and not math.isfinite(self.guidance):
            bad.append(f"guidance={self.guidance!r} (a finite scale)")
        if self.anchor is not None and not (isinstance(self.anchor, int) and self.anchor >= 0):
            bad.append(f"anchor={self.anchor!r} (0 for none, or a pooling factor >= 1)")
        if self.window is not None and not (isinstance(self.window, int) and self.window >= 0):
            bad.append(f"window={self.window!r} (0 for the whole grid, or a side >= 1 in encoder tokens)")
        if bad:
            raise ValueError(f"dial: bad setting {'; '.join(bad)}")

    @classmethod
    def parse(cls, text: str, base: "Dial | None" = None) -> "Dial":
        """``"samples=4,prior_noise=0.1,anchor=0"`` -> Dial, the settings not named taken from ``base``
        (default: the defaults); unknown names and bad numbers are errors."""
        kinds = {"steps": int, "samples": int, "prior_noise": float, "guidance": float, "anchor": int,
                 "window": int}
        values = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name not in kinds or not value:
                raise ValueError(f"dial: {part!r} is not name=value with a name in {sorted(kinds)}")
            try:
                values[name] = kinds[name](value)
            except ValueError:
                raise ValueError(f"dial: {name}={value!r} is not a number of type {kinds[name].__name__}") from None
        return replace(base, **values) if base is not None else cls(**values)

    def label(self) -> str:
        """The settings that differ from the defaults, e.g. ``"N=4, σ=0.1"``; ``"as built"`` for none."""
        short = {"steps": "steps", "samples": "N", "prior_noise": "σ", "guidance": "w", "anchor": "anchor ÷",
                 "window": "win"}
        default = Dial()
        parts = [f"{short[f.name]}{'' if f.name == 'anchor' else '='}{getattr(self, f.name):g}"
                 for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]
        return ", ".join(parts) if parts else "as built"

    def as_dict(self) -> dict:
        return asdict(self)

    def check(self, options: frozenset[str], who: str) -> None:
        """Refuse a setting that ``who`` (a system with ``dial_options`` = ``options``) does not honour:
        a ValueError naming the setting and the system. ``anchor=0`` and ``window=0`` (off) are accepted by every
        system."""
        wanted = [name for name in self.OPTIONAL
                  if (getattr(self, name) if name in self.OFF_AT_ZERO else getattr(self, name) is not None)]
        refused = [name for name in wanted if name not in options]
        if refused:
            needs = {"prior_noise": "a JSCGC with the posterior-mean prior",
                     "guidance": "a flow receiver (JSCGC)",
                     "anchor": "an image system whose JSCGC has the posterior-mean prior (μ(ŷ))",
                     "window": "a flow receiver on an encoder-token grid (an image JSCGC)"}
            raise ValueError(f"dial: {refused[0]} needs {needs[refused[0]]}; {who} has none")


class System(Protocol):
    """What every communication system is (docs/design.md, 'Systems'): the training loop, the evaluation
    library and every experiment use these calls and attributes only.

    data: the training source it reads, "pixels" (images or vectors) or "latents" (a
        :class:`LatentBatch` whose latents were encoded once).
    views: the fields of its :class:`Reception` that are scored as receivers of their own: ("output",), or
        ("output", "sample", "estimate") for a system whose output is its sample anchored to μ(ŷ).
    dial_options: the :attr:`Dial.OPTIONAL` settings it honours (steps and samples: every system).
    """
    data: str
    views: tuple[str, ...]
    dial_options: frozenset[str]

    def transmit(self, x0: Batch, snr_db: torch.Tensor | float,
                 generator: torch.Generator | None = None) -> Received:
        """Encode x0 (B, *S) and send it at ``snr_db`` (scalar or (B,)); differentiable."""

    def receive(self, received: Received, dial: Dial = Dial(), generator: torch.Generator | None = None,
                shape: tuple[int, ...] | None = None) -> Reception:
        """The receiver at operating point ``dial`` for data of ``shape`` (B, *S)."""

    def plan(self) -> tuple[Stage, ...]:
        """The ordered training stages (run by :func:`jscgc.train.train`)."""

    def config(self) -> dict[str, Any]:
        """The registry configuration of its parts (recorded in every checkpoint)."""
