"""Channels, power normalisation and dB helpers.

Conventions (docs/design.md, 'Symbols and power', 'SNR and noise'): complex channel symbols are carried as real tensors of shape
``(..., n, 2)`` (last axis = real, imaginary). After the encoder's power normalisation the
average power per complex symbol is 1, and ``SNR (dB) = 10 log10(P / N0)`` with ``P = 1``,
so the complex noise per symbol is CN(0, N0) with N0 = 10^(-SNR/10): variance N0/2 on each
real component. The SNR is an argument of every call, so one channel object serves a sweep.

AWGN and Rayleigh block fading are differentiable in their input (paper Eq. 11: the
gradient of the loss reaches the encoder through the channel). BSC and BEC act on bits
for NECST-style codes (Choi et al., ICML 2019). Which channel a method is built with is a name in
:mod:`jscgc.channel_registry`.
"""
from __future__ import annotations

import math
import torch
from torch import nn

from jscgc.types import ChannelOutput

__all__ = [
    "db_to_linear", "linear_to_db", "noise_variance", "power_normalize", "symbol_power",
    "AWGN", "RayleighBlockFading", "ZeroForcedRayleigh", "ChannelOutput", "equalize", "BSC", "FadingBSC",
    "BEC", "ERASED", "bsc_crossover_for_snr", "rayleigh_bsc_crossover", "qpsk", "as_complex", "as_real",
]

ERASED = 0.5
"""Value a BEC writes for an erased bit (bits are 0/1 floats; 0.5 carries no information)."""


def db_to_linear(db: torch.Tensor | float) -> torch.Tensor | float:
    """10^(db/10); keeps the type of its input (float or tensor)."""
    if isinstance(db, torch.Tensor):
        return torch.pow(10.0, db / 10.0)
    return 10.0 ** (db / 10.0)


def linear_to_db(x: torch.Tensor | float) -> torch.Tensor | float:
    """10 log10(x); keeps the type of its input."""
    if isinstance(x, torch.Tensor):
        return 10.0 * torch.log10(x)
    return 10.0 * math.log10(x)


def as_complex(z: torch.Tensor) -> torch.Tensor:
    """(..., n, 2) real -> (..., n) complex view (float32 -> complex64)."""
    _check_symbols(z)
    return torch.view_as_complex(z.contiguous())


def as_real(z: torch.Tensor) -> torch.Tensor:
    """(..., n) complex -> (..., n, 2) real."""
    return torch.view_as_real(z)


def _check_symbols(z: torch.Tensor) -> None:
    if z.dim() < 2 or z.shape[-1] != 2:
        raise ValueError(
            f"channel symbols: expected a real tensor of shape (..., n, 2), got {tuple(z.shape)}")


def _per_sample(value: torch.Tensor | float, z: torch.Tensor, name: str) -> torch.Tensor:
    """Broadcast a scalar or one-value-per-sample tensor to z's batch, shape (B, 1, ..., 1)."""
    v = torch.as_tensor(value, dtype=z.dtype, device=z.device)
    if v.dim() == 0:
        v = v.expand(z.shape[0])
    if v.dim() != 1 or v.shape[0] != z.shape[0]:
        raise ValueError(
            f"{name}: expected a scalar or a tensor of shape ({z.shape[0]},), got {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise ValueError(f"{name}: must be finite, got {v.tolist()}")
    return v.view(-1, *([1] * (z.dim() - 1)))


def noise_variance(snr_db: torch.Tensor | float, z: torch.Tensor) -> torch.Tensor:
    """N0 = 10^(-SNR/10) per complex symbol for unit signal power, shape (B, 1, ..., 1)."""
    return db_to_linear(-_per_sample(snr_db, z, "snr_db"))


def symbol_power(z: torch.Tensor) -> torch.Tensor:
    """Average power per complex symbol of each sample: (B, ..., n, 2) -> (B,)."""
    _check_symbols(z)
    return z.pow(2).flatten(1).sum(1) / (z[..., 0].flatten(1).shape[1])


def power_normalize(z: torch.Tensor, over: str = "sample", eps: float = 1e-12) -> torch.Tensor:
    """Scale symbols to average power 1 per complex symbol.

    Args:
        z: symbols, shape (B, ..., n, 2).
        over: ``"sample"`` (default): every sample has power exactly 1 (a per-codeword
            constraint, as in the paper and MambaJSCC); ``"batch"``: the batch average is 1
            (the information-theoretic average-power constraint E||z||^2 = n); ``"none"``: z is
            returned unchanged (for encoders whose outputs are bit logits, as NECST's).

    Returns:
        Tensor of z's shape.
    """
    _check_symbols(z)
    n = z[..., 0].flatten(1).shape[1]
    if over == "sample":
        energy = z.pow(2).flatten(1).sum(1)
        scale = torch.sqrt(n / energy.clamp_min(eps)).view(-1, *([1] * (z.dim() - 1)))
    elif over == "batch":
        scale = torch.sqrt(n * z.shape[0] / z.pow(2).sum().clamp_min(eps))
    elif over == "none":
        return z
    else:
        raise ValueError(f"power_normalize: over must be 'sample', 'batch' or 'none', got {over!r}")
    return z * scale


class AWGN(nn.Module):
    """Complex AWGN: y = z + w, w ~ CN(0, N0 I), N0 = 10^(-SNR/10) (unit signal power)."""

    def forward(self, z: torch.Tensor, snr_db: torch.Tensor | float,
                generator: torch.Generator | None = None) -> ChannelOutput:
        """Args: z (B, ..., n, 2); snr_db scalar or (B,). Returns ChannelOutput(y of z's shape)."""
        _check_symbols(z)
        std = torch.sqrt(noise_variance(snr_db, z) / 2)
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        return ChannelOutput(z + std * noise)


class RayleighBlockFading(nn.Module):
    """y = h ⊙ z + w with one h ~ CN(0, 1) per block of ``block_size`` symbols.

    Args:
        block_size: symbols sharing one gain; ``None`` means one gain per sample (slow fading).
    """

    def __init__(self, block_size: int | None = None):
        super().__init__()
        if block_size is not None and block_size < 1:
            raise ValueError(f"block_size: expected a positive integer or None, got {block_size}")
        self.block_size = block_size

    def sample_gain(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw block gains and expand them to z's shape (B, n, 2)."""
        _check_symbols(z)
        b, n = z.shape[0], z[0, ..., 0].numel()
        size = n if self.block_size is None else self.block_size
        blocks = math.ceil(n / size)
        h = torch.randn((b, blocks, 2), generator=generator, device=z.device, dtype=z.dtype)
        h = (h / math.sqrt(2)).repeat_interleave(size, dim=1)[:, :n]
        return h.reshape(z.shape)

    def forward(self, z: torch.Tensor, snr_db: torch.Tensor | float,
                generator: torch.Generator | None = None,
                gain: torch.Tensor | None = None) -> ChannelOutput:
        """Args: z (B, n, 2); snr_db scalar or (B,); gain (B, n, 2) to fix h (else drawn first,
        then the noise, from ``generator``). Returns ChannelOutput(received, gain): each block's
        complex gain repeated over its symbols (the CSI)."""
        if gain is None:
            gain = self.sample_gain(z, generator)
        faded = as_real(as_complex(gain) * as_complex(z))
        return ChannelOutput(AWGN()(faded, snr_db, generator).received, gain)


def equalize(received: torch.Tensor, gain: torch.Tensor, snr_db: torch.Tensor | float,
             method: str = "mmse") -> torch.Tensor:
    """Per-symbol equalisation with known CSI.

    Zero-forcing: y / h. MMSE (unit-power symbols): conj(h) y / (|h|^2 + N0).
    Shapes: received, gain (B, n, 2); returns (B, n, 2).
    """
    y, h = as_complex(received), as_complex(gain)
    if method == "zf":
        return as_real(y / h)
    if method == "mmse":
        n0 = noise_variance(snr_db, received)[..., 0]
        return as_real(h.conj() * y / (h.abs().pow(2) + n0))
    raise ValueError(f"equalize: method must be 'mmse' or 'zf', got {method!r}")


class ZeroForcedRayleigh(nn.Module):
    """Rayleigh block fading zero-forced at the receiver's front end: y / h = z + w / h, returned without
    the gain (the receiver gets the equalised symbols only; ``CommSystem.transmit`` equalises a channel
    that returns a gain by MMSE instead). Args: block_size as :class:`RayleighBlockFading`."""

    def __init__(self, block_size: int | None = None):
        super().__init__()
        self.fading = RayleighBlockFading(block_size)

    def forward(self, z: torch.Tensor, snr_db: torch.Tensor | float,
                generator: torch.Generator | None = None) -> ChannelOutput:
        """Args: z (B, n, 2); snr_db scalar or (B,). Returns ChannelOutput(y / h of z's shape)."""
        out = self.fading(z, snr_db, generator)
        return ChannelOutput(equalize(out.received, out.gain, snr_db, "zf"))


def _check_prob(p: float, name: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {p}")


def _check_bits(bits: torch.Tensor) -> None:
    if not bool(((bits == 0) | (bits == 1)).all()):
        raise ValueError("bits: expected a tensor of 0/1 values")


class BSC(nn.Module):
    """Binary symmetric channel: each bit flips independently with probability p.

    Args:
        p: a fixed crossover probability, or None for the BSC matched to an AWGN SNR: the per-bit
            error of hard-decision Gray QPSK at that SNR, p = Q(√SNR) (two bits per complex channel
            use, one per quadrature; see :func:`bsc_crossover_for_snr`), taken per sample from ``snr_db``.
    """

    def __init__(self, p: float | None = None):
        super().__init__()
        if p is not None:
            _check_prob(p, "BSC crossover p")
        self.p = p

    def crossover(self, snr_db: torch.Tensor | float | None, bits: torch.Tensor) -> torch.Tensor:
        """The crossover probability per sample, shape (B, 1, ..., 1) (or a scalar tensor)."""
        if self.p is not None:
            return torch.tensor(self.p, device=bits.device)
        if snr_db is None:
            raise ValueError("BSC(p=None) is matched to an SNR: pass snr_db")
        return 0.5 * torch.erfc(torch.sqrt(db_to_linear(_per_sample(snr_db, bits, "snr_db")) / 2))

    def forward(self, bits: torch.Tensor, snr_db: torch.Tensor | float | None = None,
                generator: torch.Generator | None = None) -> ChannelOutput:
        """bits: (B, ...) 0/1 floats; snr_db: scalar or (B,) (needed when p is None).
        Returns ChannelOutput(received bits, same shape). Differentiable in ``bits`` (a flip is 1 - bit)."""
        _check_bits(bits)
        p = self.crossover(snr_db, bits)
        flips = torch.rand(bits.shape, generator=generator, device=bits.device) < p
        return ChannelOutput(torch.where(flips, 1 - bits, bits))


class FadingBSC(BSC):
    """The BSC a bit sees when sent as hard-decision Gray QPSK over Rayleigh fading with CSI at the
    receiver, the bits interleaved over independent fades (a memoryless channel): crossover
    E_h[Q(|h| √SNR)] = ½ (1 − √(SNR / (2 + SNR))) per sample (:func:`rayleigh_bsc_crossover`)."""

    def __init__(self):
        super().__init__(None)

    def crossover(self, snr_db: torch.Tensor | float | None, bits: torch.Tensor) -> torch.Tensor:
        """The fading-averaged crossover per sample, shape (B, 1, ..., 1)."""
        if snr_db is None:
            raise ValueError("FadingBSC is matched to an SNR: pass snr_db")
        s = db_to_linear(_per_sample(snr_db, bits, "snr_db"))
        return 1 / ((2 + s) * (1 + torch.sqrt(s / (2 + s))))   # ½ (1 − r) = ½ (1 − r²) / (1 + r), r² = s / (2 + s)


class BEC(nn.Module):
    """Binary erasure channel: each bit is erased (set to ``ERASED`` = 0.5) with probability ``e``.
    The SNR argument is accepted for the common channel call and does not change ``e``."""

    def __init__(self, e: float):
        super().__init__()
        _check_prob(e, "BEC erasure probability e")
        self.e = e

    def forward(self, bits: torch.Tensor, snr_db: torch.Tensor | float | None = None,
                generator: torch.Generator | None = None) -> ChannelOutput:
        """bits: any shape, 0/1 floats. Returns ChannelOutput(bits with erasures, same shape)."""
        _check_bits(bits)
        erased = torch.rand(bits.shape, generator=generator, device=bits.device) < self.e
        return ChannelOutput(torch.where(erased, torch.full_like(bits, ERASED), bits))


def qpsk(bits: torch.Tensor) -> torch.Tensor:
    """Bits (B, n, 2) in {0, 0.5 (erased), 1} -> Gray QPSK symbols (B, n, 2): (2b − 1)/√2 on each
    quadrature, so unit power per complex symbol; an erasure becomes 0 on its axis."""
    if bits.dim() < 2 or bits.shape[-1] != 2:
        raise ValueError(f"qpsk: expected bits of shape (..., n, 2), got {tuple(bits.shape)}")
    return (2 * bits - 1) / math.sqrt(2)


def bsc_crossover_for_snr(snr_db: float) -> float:
    """Per-bit error of hard-decision Gray QPSK over AWGN at SNR = Es/N0 per complex symbol: Q(√SNR).

    Each quadrature carries ±1/√2 in real noise of variance N0/2, so p = Q((1/√2)/√(N0/2)) = Q(√(Es/N0)),
    and Q(x) = erfc(x/√2)/2 gives p = erfc(√(SNR/2))/2.
    """
    return 0.5 * math.erfc(math.sqrt(db_to_linear(snr_db) / 2))


def rayleigh_bsc_crossover(snr_db: float) -> float:
    """Per-bit error of hard-decision Gray QPSK over Rayleigh fading h ~ CN(0, 1) with CSI at SNR per
    complex symbol: E[Q(|h| √SNR)] over |h|² ~ Exp(1), the classical ½ (1 − √(γ / (1 + γ))) with the mean
    SNR per bit γ = SNR / 2, written without the cancellation at high SNR."""
    s = db_to_linear(snr_db)
    return 1.0 / ((2 + s) * (1 + math.sqrt(s / (2 + s))))
