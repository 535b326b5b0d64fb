"""Channel bandwidth ratio (CBR) accounting, in one place.

CBR = complex channel symbols / real source dimensions (H · W · 3). The paper's 1/384 sends a
256x256 RGB image in 512 complex symbols. Every image encoder emits a whole number of complex
symbols per output token; a token covers ``stride x stride`` pixels, so a token carries
3 · stride² · CBR symbols, which must be a whole number. Nothing here rounds: a CBR that cannot be
met exactly is an error that names the numbers.
"""
from __future__ import annotations

from fractions import Fraction

__all__ = ["as_fraction", "n_symbols", "symbols_per_token", "achieved_cbr"]


def as_fraction(cbr: float | str | Fraction) -> Fraction:
    """Parse a CBR given as a Fraction, a string such as "1/384", or a float (e.g. 1/384)."""
    try:
        f = Fraction(cbr) if not isinstance(cbr, float) else Fraction(cbr).limit_denominator(1 << 20)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ValueError(f"cbr: expected a positive ratio such as 1/384, got {cbr!r}") from None
    if f <= 0:
        raise ValueError(f"cbr: expected a positive ratio such as 1/384, got {cbr!r}")
    return f


def n_symbols(height: int, width: int, cbr: float | str | Fraction, channels: int = 3) -> int:
    """Complex symbols for an image of ``height x width x channels`` at ``cbr``; exact or error."""
    if height < 1 or width < 1:
        raise ValueError(f"image size: expected positive height and width, got {height}x{width}")
    n = height * width * channels * as_fraction(cbr)
    if n.denominator != 1:
        raise ValueError(f"cbr {as_fraction(cbr)}: a {height}x{width}x{channels} image would need "
                         f"{float(n):.4g} complex symbols, not a whole number")
    return int(n)


def symbols_per_token(stride: int, cbr: float | str | Fraction, channels: int = 3) -> int:
    """Complex symbols each encoder token (``stride x stride`` pixels) carries at ``cbr``."""
    try:
        return n_symbols(stride, stride, cbr, channels)
    except ValueError:
        raise ValueError(f"cbr {as_fraction(cbr)}: an encoder token of {stride}x{stride} pixels would "
                         f"carry {float(stride * stride * channels * as_fraction(cbr)):.4g} complex "
                         "symbols; choose a CBR that gives a whole number (or another stride)") from None


def achieved_cbr(n: int, height: int, width: int, channels: int = 3) -> Fraction:
    """The CBR actually used: n complex symbols for a height x width x channels image."""
    return Fraction(n, height * width * channels)
