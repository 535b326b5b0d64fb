"""The toy's information bookkeeping for the chosen channel (``experiments/toy_manifold.py --channel``):
the capacity each row is bounded by and the I(X; Ŷ) interval, both from :mod:`jscgc.channel_registry`.

* capacity: n uses of the channel (``channel_capacity``), or, for a binary method, n uses of the binary
  channel its bits see (``bit_law``; two bits per use) — for ``awgn`` the BSC matched to the SNR.
* I(X; Ŷ): the code's law over the channel. A symbol channel whose law is Gaussian given its gain
  (y = h ⊙ z + CN(0, N0), h known at the receiver) is estimated with ``theory``'s Gaussian estimators on
  zero-forced coordinates, the noise scale 1/|h| drawn from the channel's CSI law: for a fading channel the
  estimate is of I(X; Y, H), which bounds what any equaliser's output carries from above. A channel of
  unknown law gets no estimate (NaN), only the capacity as the upper end. Bit codes: the exact BSC or BEC formula.
* The Bayes-optimal references (``theory.tasks.posterior``) are written for the AWGN law only
  (``awgn_law``); for other channels those columns are left empty.
"""
from __future__ import annotations

import numpy as np
import torch

from jscgc.channel_registry import bit_law, channel_capacity, channel_entry, channel_gains
from jscgc.methods import METHODS
from theory.check import MIInterval, mi_of_bits, mi_of_codebook, mi_of_samples
from theory.tasks import ToySource, awgn_sigma

__all__ = ["capacity", "estimate_mi", "noise_scale", "awgn_law", "CODEBOOK_DRAWS"]

CODEBOOK_DRAWS = 20000
"""Monte Carlo draws of the codebook MI (``theory.check.mi_of_codebook``)."""


def awgn_law(channel: str) -> bool:
    """Whether ``channel`` is AWGN in law (Gaussian, no gain): the one law the Bayes references are written for."""
    entry = channel_entry(channel)
    return entry.gaussian and entry.csi is None


def capacity(method: str, src: ToySource, snr: float, channel: str) -> float:
    """Capacity in bits of what the method's code is sent over at ``snr``: n uses of ``channel``, or, for a
    binary method, of the binary channel its bits see there (two bits per complex use)."""
    per_use = bit_law(channel, snr).capacity() if METHODS[method].binary else channel_capacity(channel, snr)
    return src.n_symbols * per_use


def noise_scale(channel: str, n: int, n_symbols: int, seed: int) -> np.ndarray | None:
    """The noise scale 1/|h| per real component after zero-forcing, (n, 2 n_symbols) in the order of
    ``codes.flatten(1)`` (re, im of each symbol), h drawn from the channel's CSI law; None for h = 1."""
    gain = channel_gains(channel, torch.zeros(n, n_symbols, 2, dtype=torch.float64),
                         torch.Generator().manual_seed(seed))
    if gain is None:
        return None
    mag = gain.double().norm(dim=-1).clamp_min(1e-150)                                  # (n, n_symbols)
    return (1.0 / mag).repeat_interleave(2, dim=1).numpy()


def estimate_mi(system, method: str, src: ToySource, snr: float, cfg, seed: int) -> MIInterval:
    """(mi, low, high) in bits for the trained encoder at ``snr`` over ``cfg.channel``: the codes (or bits)
    come from the system, the estimate from :mod:`theory.check`."""
    n = cfg.mi_batch * cfg.mi_batches
    cap = capacity(method, src, snr, cfg.channel)
    with torch.no_grad():
        if METHODS[method].binary:  # deterministic bits (eval mode) over the binary channel they see
            x = torch.as_tensor(src.sample(n, seed + 1), dtype=torch.float32)
            bits = system.send_bits(system.bit_logits(x)).flatten(1).numpy()   # (N, 2n)
            law = bit_law(cfg.channel, snr)
            return mi_of_bits(bits, law.prob, law.kind)
        if not channel_entry(cfg.channel).gaussian:
            return MIInterval(float("nan"), 0.0, cap)
        if src.points is not None:
            codes = system.encoder(torch.as_tensor(src.points, dtype=torch.float32)).flatten(1).numpy()
            scale = noise_scale(cfg.channel, CODEBOOK_DRAWS, src.n_symbols, seed + 3)
            return mi_of_codebook(codes, awgn_sigma(snr), seed, n=CODEBOOK_DRAWS, scale=scale)
        x = torch.as_tensor(src.sample(n, seed + 1), dtype=torch.float32)
        codes = system.encoder(x).flatten(1).numpy()
    scale = noise_scale(cfg.channel, len(codes), src.n_symbols, seed + 3)
    return mi_of_samples(codes, awgn_sigma(snr), cfg.mi_batch, seed, cap, scale=scale)
