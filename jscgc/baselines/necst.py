"""NECST (Choi, Tatwawadi, Grover, Weissman & Ermon, ICML 2019): a learned bit code over a binary channel.

Dataflow::

    x ─encoder─► logits ℓ (B, n, 2) ─► bits y ~ Bernoulli(σ(ℓ)) ─► BSC / BEC ─► ŷ ─► QPSK ─► decoder ─► x̂

Two bits per complex channel use, one per quadrature (Gray QPSK): the received bits are handed to the
decoder as the QPSK symbol (2ŷ − 1)/√2 (an erasure as 0 on its axis), so ``Received`` has the (B, n, 2)
shape of every other method and n is the number of channel uses. With ``BSC(p=None)`` the crossover is
the per-bit error of hard-decision Gray QPSK at the call's SNR, p = Q(√SNR) — the fair binary
counterpart of an AWGN method with the same n and SNR (2n(1 − h(p)) bits per sample at most).

Training maximises the multi-sample bound on log p(x | ŷ) with a Gaussian decoder of fixed σ,

    L = log (1/K) Σ_k f_k,   f_k = p(x | ŷ_k) = N(x; g(ŷ_k), σ² I),   y_1..y_K ~ q(y | x),

whose gradient through the discrete bits is estimated with VIMCO (Mnih & Rezende, ICML 2016):

    ∇L ≈ Σ_k (L − L_{−k}) ∇ log q(y_k | x) + Σ_k w_k ∇ log f_k,   w_k = f_k / Σ_j f_j,
    L_{−k} = log (1/K) (Σ_{j≠k} f_j + exp(mean_{j≠k} log f_j))   (leave-one-out baseline).

``estimator="straight_through"`` replaces this by one sample and the straight-through gradient
y + σ(ℓ) − stop_grad(σ(ℓ)) with plain MSE, for comparison. The reported loss is scaled by 2σ²/D
(D = elements of x), so with K = 1 it is the MSE per element, comparable with the MSE methods.

The encoder is any package encoder built with ``power="none"``: its (B, n, 2) output is read as the 2n
bit logits.
At evaluation (``eval()``) the encoder sends its most likely bits (ℓ > 0), so a code is a
deterministic map; training samples them.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jscgc.channels import qpsk
from jscgc.system import MSEReconstruction, snr_per_sample
from jscgc.types import Received, Stage

__all__ = ["NECST", "vimco_surrogate", "ESTIMATORS"]

ESTIMATORS = ("vimco", "straight_through")


def vimco_surrogate(log_f: torch.Tensor, log_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The multi-sample bound and a surrogate whose gradient is the VIMCO estimate of its gradient.

    Args:
        log_f: (K, B) log-likelihoods log p(x | ŷ_k), differentiable in the decoder (and ST paths).
        log_q: (K, B) log q(y_k | x) of the sampled bits, differentiable in the encoder.

    Returns:
        (bound, surrogate), each (B,): bound = log mean_k exp(log_f); surrogate has the bound's value
        and the gradient Σ_k (L − L_{−k}) ∇ log q_k + ∇ L.
    """
    k = log_f.shape[0]
    if k < 2:
        raise ValueError(f"VIMCO: needs at least 2 samples per input, got {k}")
    bound = torch.logsumexp(log_f, 0) - math.log(k)
    lf = log_f.detach()
    loo_mean = (lf.sum(0, keepdim=True) - lf) / (k - 1)                       # (K, B): mean of the others
    swapped = lf.unsqueeze(0).expand(k, k, -1).clone()                          # [k, j] = log f_j
    idx = torch.arange(k, device=lf.device)
    swapped[idx, idx] = loo_mean                                                # … with j = k replaced
    baseline = torch.logsumexp(swapped, 1) - math.log(k)                        # (K, B): L_{−k}
    signal = bound.detach().unsqueeze(0) - baseline
    score = (signal * log_q).sum(0)
    return bound, bound + score - score.detach()


class NECST(MSEReconstruction):
    """Encoder -> Bernoulli bits -> binary channel -> decoder (Choi et al. 2019). Receives like the
    MSE reference (x̂ = g(ŷ)); differs in what it transmits and in its objective.

    Args:
        encoder: x (B, *S) -> (B, n, 2) with ``power="none"``: the 2n bit logits.
        channel: ``channel(bits, snr_db, generator)`` on 0/1 bits (``BSC`` or ``BEC``).
        decoder: ``decoder(Received, shape) -> x̂`` (B, *S) (the mean of the Gaussian p(x | ŷ)).
        samples: K, samples of the bits per input for VIMCO.
        estimator: ``"vimco"`` or ``"straight_through"``.
        sigma: the decoder's fixed standard deviation σ (in the units of x).
    """

    def __init__(self, encoder: nn.Module, channel: nn.Module, decoder: nn.Module, samples: int = 5,
                 estimator: str = "vimco", sigma: float = 0.1):
        if estimator not in ESTIMATORS:
            raise ValueError(f"NECST estimator: expected one of {ESTIMATORS}, got {estimator!r}")
        if estimator == "vimco" and samples < 2:
            raise ValueError(f"NECST samples: VIMCO needs at least 2, got {samples}")
        if sigma <= 0:
            raise ValueError(f"NECST sigma: expected a positive number, got {sigma}")
        super().__init__(encoder, channel, decoder)
        self.samples, self.estimator, self.sigma = samples, estimator, sigma

    def plan(self) -> tuple[Stage, ...]:
        """One stage, "train": the VIMCO (or straight-through) objective of :meth:`loss`, every part trained."""
        return (Stage("train", 1.0, self.loss),)

    def bit_logits(self, x0: torch.Tensor) -> torch.Tensor:
        """(B, *S) -> logits of P(bit = 1), (B, n, 2): one bit per quadrature of each channel use."""
        return self.encoder(x0)

    def send_bits(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sampled bits in training mode, the most likely bits in eval mode; 0/1 floats of the logits' shape."""
        if not self.training:
            return (logits > 0).to(logits.dtype)
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        return (u < torch.sigmoid(logits)).to(logits.dtype)

    def _through_channel(self, bits: torch.Tensor, snr: torch.Tensor, generator) -> Received:
        return Received(qpsk(self.channel(bits, snr, generator).received), snr)

    def transmit(self, x0: torch.Tensor, snr_db, generator: torch.Generator | None = None) -> Received:
        """x0 (B, *S) -> Received(QPSK of the received bits (B, n, 2), SNR (B,))."""
        snr = snr_per_sample(snr_db, x0.shape[0], x0.device)
        return self._through_channel(self.send_bits(self.bit_logits(x0), generator), snr, generator)

    def loss(self, x0: torch.Tensor, snr_db, generator: torch.Generator | None = None) -> torch.Tensor:
        """−(multi-sample bound) · 2σ²/D, with the VIMCO (or straight-through) gradient."""
        b = x0.shape[0]
        snr = snr_per_sample(snr_db, b, x0.device)
        logits = self.bit_logits(x0)
        if self.estimator == "straight_through":
            prob = torch.sigmoid(logits)
            bits = self.send_bits(logits, generator) + prob - prob.detach()
            x_hat = self.decoder(self._through_channel(bits, snr, generator), tuple(x0.shape))
            return (x_hat - x0).pow(2).mean()
        k = self.samples
        logits_k = logits.unsqueeze(0).expand(k, *logits.shape)                  # (K, B, n, 2)
        bits = self.send_bits(logits_k, generator)
        log_q = -F.binary_cross_entropy_with_logits(logits_k, bits, reduction="none").flatten(2).sum(-1)  # (K, B)
        received = self._through_channel(bits.reshape(k * b, *logits.shape[1:]), snr.repeat(k), generator)
        x_hat = self.decoder(received, (k * b, *x0.shape[1:])).view(k, *x0.shape)
        d = x0[0].numel()
        log_f = -(x_hat - x0.unsqueeze(0)).pow(2).reshape(k, b, d).sum(-1) / (2 * self.sigma ** 2)
        _, surrogate = vimco_surrogate(log_f, log_q)
        return -(2 * self.sigma ** 2 / d) * surrogate.mean()

    def config(self) -> dict[str, Any]:
        from jscgc.registry import config_of

        return {"class": "NECST", "channel": type(self.channel).__name__,
                "p": getattr(self.channel, "p", None), "e": getattr(self.channel, "e", None),
                "encoder": config_of(self.encoder), "decoder": config_of(self.decoder),
                "samples": self.samples, "estimator": self.estimator, "sigma": self.sigma}
