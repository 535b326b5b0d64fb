"""Receiving in overlapping windows, fused at every velocity call (docs/design.md, 'Windowed reception').

A velocity model trained on small crops is run on windows of the training size laid over a larger
latent; at every call (every Euler step, and the one pass of μ(ŷ)) each latent position's velocity is the
mean of the velocities of the windows that hold it (MultiDiffusion, Bar-Tal et al., ICML 2023). Each window
is conditioned on its own part of ŷ: the symbols of the encoder tokens under it, with the sample's SNR.

Layout (docs/design.md, 'Symbols and power'): the encoders emit k complex symbols per token, tokens
row-major, so ŷ (B, n, 2) reads as (B, h, w, k, 2) on the h × w token grid, and a token covers
``token_stride`` × ``token_stride`` latent positions. Windows are counted in tokens::

    starts(n, window, hop) = 0, hop, 2·hop, …, and n − window last (flush with the far edge)

with hop = window // 2 (at least 1). A window as large as the grid (or larger) on both axes is one call on
the whole input.
"""
from __future__ import annotations

import torch
from torch import nn

from jscgc.types import Received

__all__ = ["window_starts", "coverage", "crop_received", "Windowed"]


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """The first token of each window along an axis of ``n`` tokens: 0, hop, 2·hop, … while the window fits,
    then ``n − window`` so the last window ends at the far edge; ``[0]`` when the window holds the axis."""
    if window >= n:
        return [0]
    starts = list(range(0, n - window + 1, hop))
    return starts if starts[-1] == n - window else starts + [n - window]


def coverage(h: int, w: int, window: int, hop: int) -> torch.Tensor:
    """How many windows hold each token of an h × w grid: (h, w) float32, every entry >= 1."""
    count = torch.zeros(h, w)
    wh, ww = min(window, h), min(window, w)
    for r in window_starts(h, window, hop):
        for c in window_starts(w, window, hop):
            count[r:r + wh, c:c + ww] += 1
    return count


def crop_received(received: Received, grid: tuple[int, int], top: int, left: int, size: tuple[int, int]) -> Received:
    """ŷ of the tokens [top, top + size[0]) × [left, left + size[1]) of an h × w token ``grid``: symbols
    (B, size[0]·size[1]·k, 2) in the encoders' row-major order (and the gain likewise), the same SNR."""
    h, w = grid
    b, n, _ = received.symbols.shape
    if n % (h * w):
        raise ValueError(f"received symbols: {n} symbols do not fill the {h}x{w} encoder-token grid")

    def cut(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        tokens = x.reshape(b, h, w, n // (h * w), 2)[:, top:top + size[0], left:left + size[1]]
        return tokens.reshape(b, -1, 2)

    return Received(cut(received.symbols), received.snr_db, cut(received.gain))


class Windowed(nn.Module):
    """A velocity model run on overlapping windows and fused: x_t (B, C, H, W), t (B,), Received -> v (B, C, H, W),
    each position's v the mean over the windows that hold it (module doc).

    Args:
        velocity: ``velocity(x_t, t, Received) -> v`` on any latent whose sides are multiples of
            ``token_stride`` (and of ``patch``).
        window: the window side in encoder tokens (>= 1); the hop is window // 2 (at least 1), rounded down to
            whole patches.
        token_stride: latent positions per encoder-token side (the encoder's stride on the latent).
        patch: the velocity model's patch size on the latent; window sides and starts are multiples of it.
        max_batch: at most this many samples (windows × batch) per velocity call; None: all windows in one call.
    """

    def __init__(self, velocity: nn.Module, window: int, token_stride: int, patch: int = 1,
                 max_batch: int | None = None):
        super().__init__()
        unit = max(patch // token_stride, 1)          # tokens per patch-aligned step
        if window < 1 or window % unit or (patch % token_stride and token_stride % patch):
            raise ValueError(f"window: {window} tokens of {token_stride} latent positions do not align with "
                             f"patches of {patch} (a window of whole patches, >= 1, is expected)")
        self.velocity, self.window, self.token_stride = velocity, window, token_stride
        self.hop = max(window // 2 // unit * unit, unit)
        self.max_batch = max_batch

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, received: Received) -> torch.Tensor:
        b, c, H, W = x_t.shape
        s = self.token_stride
        h, w = H // s, W // s
        if H % s or W % s:
            raise ValueError(f"windowed velocity: a {H}x{W} latent is not a grid of {s}x{s} tokens")
        if self.window >= h and self.window >= w:
            return self.velocity(x_t, t, received)
        size = (min(self.window, h), min(self.window, w))
        rows, cols = window_starts(h, self.window, self.hop), window_starts(w, self.window, self.hop)
        places = [(r, q) for r in rows for q in cols]
        v_sum = torch.zeros_like(x_t)
        per_call = len(places) if self.max_batch is None else max(self.max_batch // b, 1)
        for i in range(0, len(places), per_call):
            group = places[i:i + per_call]
            v = self._run(x_t, t, received, (h, w), group, size)
            for (r, q), v_win in zip(group, v.split(b)):
                v_sum[..., r * s:(r + size[0]) * s, q * s:(q + size[1]) * s] += v_win
        count = coverage(h, w, self.window, self.hop).to(x_t).repeat_interleave(s, 0).repeat_interleave(s, 1)
        return v_sum / count

    def _run(self, x_t, t, received, grid, group, size) -> torch.Tensor:
        """One velocity call on the windows ``group`` stacked along the batch: (len(group)·B, C, h_w, w_w)."""
        s = self.token_stride
        xs = torch.cat([x_t[..., r * s:(r + size[0]) * s, q * s:(q + size[1]) * s] for r, q in group])
        parts = [crop_received(received, grid, r, q, size) for r, q in group]
        gain = None if received.gain is None else torch.cat([p.gain for p in parts])
        cond = Received(torch.cat([p.symbols for p in parts]), received.snr_db.repeat(len(group)), gain)
        return self.velocity(xs, t.repeat(len(group)), cond)
