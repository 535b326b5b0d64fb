"""The one table of channels a method can be built with (``Preset.channel``, ``ToySpec.channel``,
``experiments/toy_manifold.py --channel``), each with its capacity.

A channel is named ``NAME``, or ``NAME:VALUE`` for an entry that takes one number. Capacities are in
bits per complex channel use at the SNR s = 10^(SNR/10) per complex symbol (docs/design.md, 'SNR and noise'):

=========== ======= ===================================================================================
name        carries law; capacity per complex use
=========== ======= ===================================================================================
awgn        symbols y = z + w, w ~ CN(0, N0) (:class:`~jscgc.channels.AWGN`); log2(1 + s)
rayleigh    symbols y = h ⊙ z + w, h ~ CN(0, 1) per block (:class:`~jscgc.channels.RayleighBlockFading`;
                    ``rayleigh:B`` B symbols per gain, default one gain per sample), CSI at the receiver,
                    MMSE-equalised by ``CommSystem.transmit``; the ergodic capacity
                    E log2(1 + |h|² s) = e^(1/s) E1(1/s) / ln 2 (whatever the block size)
rayleigh-zf symbols the same fading, zero-forced y / h at the receiver's front end, no CSI handed on
                    (:class:`~jscgc.channels.ZeroForcedRayleigh`); the same capacity
bsc         bits    BSC matched to the SNR, p = Q(√s) (hard-decision Gray QPSK), or ``bsc:P`` a fixed p;
                    2 (1 − h(p)) (two bits per use, one per quadrature)
bec         bits    BEC with erasure probability ``bec:E`` (default 0.1); 2 (1 − e)
=========== ======= ===================================================================================

A bit code (NECST, ``Method.binary``) goes over any of them: over a bits channel as it is, over a symbol
channel as hard-decision Gray QPSK, i.e. through the binary channel that makes of it (``bits``,
``bit_law``): for ``awgn`` the BSC matched to the SNR, for ``rayleigh`` the BSC with the fading-averaged
crossover ½ (1 − √(s / (2 + s))) (:class:`~jscgc.channels.FadingBSC`: bits interleaved over independent
fades). A method that sends complex symbols refuses a bits channel. ``register_channel`` adds an entry
from any file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
from scipy.special import exp1
from torch import nn

from jscgc.channels import (AWGN, BEC, BSC, FadingBSC, RayleighBlockFading, ZeroForcedRayleigh,
                            bsc_crossover_for_snr, db_to_linear, rayleigh_bsc_crossover)

__all__ = ["BitLaw", "ChannelEntry", "CHANNELS", "register_channel", "check_channel", "channel_entry",
           "build_channel", "symbol_channel", "bit_channel", "channel_capacity", "bit_law", "channel_gains",
           "check_pairing", "awgn_capacity", "rayleigh_capacity", "binary_entropy_bits"]

CARRIES = ("symbols", "bits")


def binary_entropy_bits(p: float) -> float:
    """h(p) = −p log2 p − (1 − p) log2 (1 − p) in bits, 0 at p ∈ {0, 1} (the same float as
    ``theory.bound.binary_entropy``)."""
    if p <= 0 or p >= 1:
        return 0.0
    q = np.float64(p)
    return float(-q * np.log2(q) - (1 - q) * np.log2(1 - q))


def awgn_capacity(snr_db: float) -> float:
    """log2(1 + s) bits per complex use (the same float as ``theory.mi.awgn_capacity(2, snr_db)``)."""
    return float(np.log2(1 + 10 ** (np.asarray(snr_db, float) / 10)))


def rayleigh_capacity(snr_db: float) -> float:
    """Ergodic capacity of Rayleigh fading h ~ CN(0, 1) with CSI at the receiver, E[log2(1 + |h|² s)]
    = e^(1/s) E1(1/s) / ln 2 bits per complex use. Below about −17 dB (1/s > 50) e^x E1(x) is summed
    from its asymptotic series Σ_k (−1)^k k! / x^(k+1) (relative error < 1e-11), as e^x overflows."""
    x = 1.0 / db_to_linear(float(snr_db))
    if x > 50:
        value = sum((-1) ** k * math.factorial(k) / x ** (k + 1) for k in range(11))
    else:
        value = math.exp(x) * float(exp1(x))
    return value / math.log(2)


class BitLaw(NamedTuple):
    """The memoryless binary channel each bit sees: ``kind`` "bsc" (``prob`` the crossover) or "bec"
    (``prob`` the erasure probability)."""
    kind: str
    prob: float

    def capacity(self) -> float:
        """Bits per complex channel use (two bits per use): 2 (1 − h(p)) or 2 (1 − e)."""
        return 2 * (1 - binary_entropy_bits(self.prob)) if self.kind == "bsc" else 2 * (1 - self.prob)


@dataclass(frozen=True)
class ChannelEntry:
    """A registered channel. The callables take the entry's number (``NAME:VALUE``, else ``default``) as
    their last argument when ``param`` names one, and no number otherwise.

    carries: "symbols" (modules map z (B, n, 2) -> ChannelOutput, :mod:`jscgc.channels`) or "bits".
    build: () -> the channel module.   capacity: (snr_db) -> bits per complex channel use.
    bits: () -> the binary channel module a bit code goes through (a bits channel: ``build``); None: none.
    bit_law: (snr_db) -> :class:`BitLaw` of that binary channel (needed with ``bits``).
    csi: (z (B, n, 2), generator) -> the complex gain h (B, n, 2) the channel applies and the receiver
        knows (y = h ⊙ z + CN(0, N0)); None: h = 1.
    gaussian: whether, given the gain, the symbols see y = h ⊙ z + w with w ~ CN(0, N0) (the law the toy's
        MI estimators use); False: no MI estimate beyond the capacity.
    """
    name: str
    carries: str
    build: Callable[..., nn.Module]
    capacity: Callable[..., float]
    bits: Callable[..., nn.Module] | None = None
    bit_law: Callable[..., BitLaw] | None = None
    csi: Callable[..., torch.Tensor] | None = None
    gaussian: bool = True
    param: str | None = None
    default: float | None = None
    description: str = ""


CHANNELS: dict[str, ChannelEntry] = {}


def register_channel(name: str, carries: str, build: Callable[..., nn.Module], capacity: Callable[..., float],
                     *, bits=None, bit_law=None, csi=None, gaussian: bool = True, param: str | None = None,
                     default: float | None = None, description: str = "", replace: bool = False) -> ChannelEntry:
    """Add a channel to :data:`CHANNELS` (arguments: :class:`ChannelEntry`); a bits channel's bit code goes
    over the channel itself. A taken name is an error unless ``replace``."""
    if not name or ":" in name or name != name.strip():
        raise ValueError(f"register_channel: expected a name without ':' or spaces, got {name!r}")
    if carries not in CARRIES:
        raise ValueError(f"register_channel {name}: carries must be one of {CARRIES}, got {carries!r}")
    if name in CHANNELS and not replace:
        raise ValueError(f"register_channel: the name {name!r} is already registered (pass replace=True)")
    if carries == "bits":
        if bit_law is None:
            raise ValueError(f"register_channel {name}: a bits channel needs its bit_law")
        bits = build
    if (bits is None) != (bit_law is None):
        raise ValueError(f"register_channel {name}: give both bits and bit_law, or neither")
    CHANNELS[name] = ChannelEntry(name, carries, build, capacity, bits, bit_law, csi, gaussian, param, default,
                                  description)
    return CHANNELS[name]


def _parse(name: str) -> tuple[ChannelEntry, tuple]:
    """``NAME[:VALUE]`` -> (entry, the extra arguments of its callables: (value,) or ())."""
    if not isinstance(name, str) or name.partition(":")[0] not in CHANNELS:
        raise ValueError(f"channel: expected one of {sorted(CHANNELS)} (NAME or NAME:VALUE), got {name!r}")
    key, colon, text = name.partition(":")
    entry = CHANNELS[key]
    if entry.param is None:
        if colon:
            raise ValueError(f"channel {name!r}: {key} takes no number; write {key}")
        return entry, ()
    if not colon:
        return entry, (entry.default,)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"channel {name!r}: expected {key}:{entry.param.upper()} with a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"channel {name!r}: expected a finite {entry.param}, got {text}")
    return entry, (value,)


def channel_entry(name: str) -> ChannelEntry:
    """The registered entry of ``NAME[:VALUE]`` (an unknown name is one error listing the known)."""
    return _parse(name)[0]


def build_channel(name: str) -> nn.Module:
    """The channel module of ``NAME[:VALUE]`` (symbols or bits, as the entry carries)."""
    entry, extra = _parse(name)
    try:
        return entry.build(*extra)
    except ValueError as err:
        raise ValueError(f"channel {name!r}: {err}") from None


def check_channel(name: str) -> str:
    """``name`` if it names a registered channel and its number is valid (the module is built once to check);
    else one ValueError naming the input and what is expected."""
    build_channel(name)
    return name


def symbol_channel(name: str, method: str = "a symbol method") -> nn.Module:
    """The channel module for a method that sends complex symbols; a bits channel is refused."""
    check_pairing(method, False, name)
    return build_channel(name)


def bit_channel(name: str, method: str = "a bit code") -> nn.Module:
    """The binary channel module a bit code (NECST) goes through over channel ``name``."""
    check_pairing(method, True, name)
    entry, extra = _parse(name)
    return entry.bits(*extra)


def check_pairing(method: str, binary: bool, name: str) -> None:
    """One ValueError naming the method and the channel when they cannot go together: a symbol method on a
    bits channel, or a bit code on a symbol channel without a binary counterpart."""
    entry = channel_entry(name)
    if not binary and entry.carries == "bits":
        symbols = sorted(k for k, e in CHANNELS.items() if e.carries == "symbols")
        raise ValueError(f"method {method} sends complex symbols and channel {name!r} carries bits; "
                         f"expected a symbol channel ({', '.join(symbols)}) or a binary method")
    if binary and entry.bits is None:
        raise ValueError(f"method {method} sends bits and channel {name!r} has no binary counterpart")


def channel_capacity(name: str, snr_db: float) -> float:
    """Capacity of channel ``name`` in bits per complex channel use at ``snr_db``."""
    entry, extra = _parse(name)
    return float(entry.capacity(float(snr_db), *extra))


def bit_law(name: str, snr_db: float) -> BitLaw:
    """The law of the binary channel a bit code sees over channel ``name`` at ``snr_db``."""
    entry, extra = _parse(name)
    if entry.bit_law is None:
        raise ValueError(f"channel {name!r} has no binary counterpart")
    return entry.bit_law(float(snr_db), *extra)


def channel_gains(name: str, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """Draws of the complex gain (B, n, 2) channel ``name`` applies to symbols shaped like z (B, n, 2), as
    the receiver knows it; None for a channel without a gain (h = 1)."""
    entry, extra = _parse(name)
    return None if entry.csi is None else entry.csi(z, generator, *extra)


def _block(value: float | None) -> int | None:
    if value is not None and (value != int(value) or value < 1):
        raise ValueError(f"expected a whole number of symbols per gain >= 1, got {value:g}")
    return None if value is None else int(value)


def _rayleigh_gains(z: torch.Tensor, generator: torch.Generator | None, block: float | None) -> torch.Tensor:
    return RayleighBlockFading(_block(block)).sample_gain(z, generator)


def _matched_bsc(snr_db: float, p: float | None = None) -> BitLaw:
    return BitLaw("bsc", bsc_crossover_for_snr(snr_db) if p is None else p)


register_channel("awgn", "symbols", AWGN, awgn_capacity, bits=BSC, bit_law=_matched_bsc,
                 description="complex AWGN; a bit code sees the BSC matched to the SNR")
register_channel("rayleigh", "symbols", lambda b: RayleighBlockFading(_block(b)), lambda s, b: rayleigh_capacity(s),
                 bits=lambda b: FadingBSC(), bit_law=lambda s, b: BitLaw("bsc", rayleigh_bsc_crossover(s)),
                 csi=_rayleigh_gains, param="block_size",
                 description="Rayleigh block fading, CSI at the receiver, MMSE equalisation")
register_channel("rayleigh-zf", "symbols", lambda b: ZeroForcedRayleigh(_block(b)),
                 lambda s, b: rayleigh_capacity(s), bits=lambda b: FadingBSC(),
                 bit_law=lambda s, b: BitLaw("bsc", rayleigh_bsc_crossover(s)), csi=_rayleigh_gains,
                 param="block_size", description="Rayleigh block fading, zero-forced at the receiver")
register_channel("bsc", "bits", BSC, lambda s, p: _matched_bsc(s, p).capacity(), bit_law=_matched_bsc,
                 param="p", description="binary symmetric channel, matched to the SNR or a fixed p")
register_channel("bec", "bits", BEC, lambda s, e: BitLaw("bec", e).capacity(), bit_law=lambda s, e: BitLaw("bec", e),
                 param="e", default=0.1, description="binary erasure channel")
