"""The receiver's operating point, chosen at sampling time: the distortion–perception dial
(docs/theory.md, 'The distortion–perception frontier').

A trained generative receiver can be moved along the distortion–perception trade without retraining
(docs/theory.md, 'The distortion–perception frontier'):

========== ======================================================================================
steps      Euler steps of Eq. 14 (few steps: smoother, closer to the mean; many: closer to the flow)
samples    N posterior samples averaged per ŷ. N = 1 is posterior sampling (perception P ≈ 0 at best,
           MSE = 2·MMSE for an exact sampler); the average of N exact samples has MSE (1 + 1/N)·MMSE
           and tends to the MMSE estimate (blurrier, P grows) as N → ∞
prior_noise σ of the posterior-mean prior's start μ(ŷ) + σ ε (None: the σ trained with); σ → 0 starts
           at the MMSE estimate
guidance   classifier-free guidance w (None: as built; meaningful for a system trained with ŷ-dropout)
anchor     the ÷f coarse band of μ(ŷ) put into the output (None: as built, 0: off); images only
========== ======================================================================================

:func:`receive` applies a :class:`Dial` to any registered system, for that call only (the system's
own settings are never changed), and returns the averaged output, the N samples and their per-ŷ
diversity (mean pairwise squared distance, :func:`average_and_diversity`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import NamedTuple

import torch

from jscgc.types import Received

__all__ = ["Dial", "DialReception", "receive", "average_and_diversity"]


@dataclass(frozen=True)
class Dial:
    """One operating point of a receiver (see the module's table). ``None`` means "as the system was
    built"; a bad value is a ValueError naming the setting and what is expected."""
    steps: int = 9
    samples: int = 1
    prior_noise: float | None = None
    guidance: float | None = None
    anchor: int | None = None

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
        if bad:
            raise ValueError(f"dial: bad setting {'; '.join(bad)}")

    @classmethod
    def parse(cls, text: str, base: "Dial | None" = None) -> "Dial":
        """``"samples=4,prior_noise=0.1,anchor=0"`` -> Dial, the settings not named taken from ``base``
        (default: the defaults); unknown names and bad numbers are errors."""
        kinds = {"steps": int, "samples": int, "prior_noise": float, "guidance": float, "anchor": int}
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
        short = {"steps": "steps", "samples": "N", "prior_noise": "σ", "guidance": "w", "anchor": "anchor ÷"}
        default = Dial()
        parts = [f"{short[f.name]}{'' if f.name == 'anchor' else '='}{getattr(self, f.name):g}"
                 for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]
        return ", ".join(parts) if parts else "as built"

    def as_dict(self) -> dict:
        return asdict(self)

    def check(self, system) -> None:
        """Refuse settings the system has no use for (a ValueError naming the setting and the system)."""
        inner = getattr(system, "inner", system)
        kind = type(inner).__name__
        if self.prior_noise is not None and getattr(inner, "prior", None) != "posterior_mean":
            raise ValueError(f"dial: prior_noise needs a JSCGC with the posterior-mean prior; {kind} has none")
        if self.guidance is not None and not hasattr(inner, "guidance"):
            raise ValueError(f"dial: guidance needs a flow receiver (JSCGC); {kind} has none")
        if self.anchor and getattr(system, "anchor_lowpass", None) is None:
            raise ValueError(f"dial: anchor needs an image system (LatentSystem); {type(system).__name__} is not")
        if self.anchor and getattr(inner, "prior_net", None) is None:
            raise ValueError(f"dial: anchor needs μ(ŷ), a JSCGC with the posterior-mean prior; {kind} has none")


class DialReception(NamedTuple):
    """output: (B, *S), the average of the N samples (anchored when the dial or system says so).
    samples: (N, B, *S) the receiver's own samples (un-anchored). estimate: μ(ŷ) (B, *S) or None.
    diversity: (B,) mean pairwise squared distance per element between the N samples; None for N = 1."""
    output: torch.Tensor
    samples: torch.Tensor
    estimate: torch.Tensor | None
    diversity: torch.Tensor | None


def average_and_diversity(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The mean of N samples (N, B, *S) -> (B, *S), and their diversity (B,): the mean over the N(N−1)/2
    pairs of ‖s_i − s_j‖² / D (D = the elements of one sample), computed as 2/(N − 1) · Σ_i ‖s_i − s̄‖² / D
    (Σ_{i<j} ‖s_i − s_j‖² = N Σ_i ‖s_i − s̄‖²). For i.i.d. draws from p(x | ŷ) its expectation is
    2 tr Cov(X | ŷ) / D. None when N = 1."""
    n = samples.shape[0]
    mean = samples.mean(0)
    if n < 2:
        return mean, None
    spread = (samples - mean).pow(2).flatten(2).sum(0).mean(-1)          # Σ_i ‖s_i − s̄‖² / D, (B,)
    return mean, 2.0 * spread / (n - 1)


def receive(system, received: Received, dial: Dial = Dial(), generator: torch.Generator | None = None,
            shape: tuple[int, ...] | None = None) -> DialReception:
    """Receive ŷ at the operating point ``dial``: N = ``dial.samples`` draws of ``system.receive`` (each with
    the dial's steps, σ and w), averaged; for an image system the anchor is applied once, to the average.
    The system is not modified. ``shape``: (B, *S) of one draw, as ``system.receive`` takes it.
    μ(ŷ) is computed once for the N draws (and, for an image system, decoded once); the draws and
    their random numbers are those of N successive ``system.receive`` calls."""
    dial.check(system)
    is_image = getattr(system, "anchor_lowpass", None) is not None
    if is_image and shape is None:
        raise ValueError("dial.receive: an image system needs the image shape (B, 3, H, W)")
    options = {k: v for k, v in (("prior_noise", dial.prior_noise), ("guidance", dial.guidance)) if v is not None}
    if is_image:
        options["anchor_lowpass"] = 0                       # anchored once, after averaging
    inner = getattr(system, "inner", system)
    if dial.samples > 1 and getattr(inner, "prior", "gaussian") != "gaussian":
        if shape is None:
            shape = (received.symbols.shape[0], *inner.data_shape)
        options["mu"] = inner.prior_estimate(received, system.latent_shape(shape) if is_image else tuple(shape))
    draws, estimate = [], None
    for i in range(dial.samples):
        later = {"decode_estimate": False} if is_image and i > 0 else {}
        r = system.receive(received, generator, dial.steps, shape, **options, **later)
        draws.append(r.sample)
        if i == 0:
            estimate = r.estimate
    samples = torch.stack(draws)
    output, diversity = average_and_diversity(samples)
    factor = (system.anchor_lowpass if dial.anchor is None else dial.anchor) if is_image else 0
    if factor:
        from jscgc.latent_system import anchor

        output = anchor(output, estimate, factor)
    return DialReception(output, samples, estimate, diversity)
