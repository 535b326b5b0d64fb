"""Randomly offset RoPE positions in training (docs/design.md, 'Offset positions in training').

A backbone trained on small crops only ever sees the image-token positions 0..h−1 × 0..w−1 of a crop, and
meets larger ones at test. With an offset, each training sample's image tokens take the positions of a
crop placed at (dy, dx) inside a larger grid, so the positions met at test have been seen. diffusers'
``ZImageTransformer2DModel`` builds the (t, h, w) position ids of each batch item in
``patchify_and_embed``; :func:`shifted_positions` wraps that method for the duration of one call and adds
(0, dy_i, dx_i) to the rows of item i's image tokens (never to its padding rows or to the caption's ids).
Nothing else of the model changes, and outside the context the backbone is untouched.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["shifted_positions", "draw_offsets"]


def draw_offsets(batch: int, most: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, 2) integer offsets (dy, dx) in backbone patches, each uniform on 0..``most``."""
    return torch.randint(0, most + 1, (batch, 2), generator=generator)


@contextmanager
def shifted_positions(backbone: nn.Module, offsets: torch.Tensor, grid: tuple[int, int]):
    """Within the context, ``backbone`` (a ZImageTransformer2DModel) gives batch item i's image tokens the
    positions of its (h, w) patch ``grid`` shifted by ``offsets[i]`` = (dy, dx). A shifted grid that leaves
    the backbone's RoPE tables (``axes_lens``) is a ValueError naming both."""
    lens = backbone.config.axes_lens
    top = (int(offsets[:, 0].max()) + grid[0], int(offsets[:, 1].max()) + grid[1])
    if top[0] > lens[1] or top[1] > lens[2]:
        raise ValueError(f"rope_offset: positions up to {top} leave the backbone's RoPE tables {tuple(lens[1:])}")
    original = backbone.patchify_and_embed

    def patchify_and_embed(*args, **kwargs):
        out = list(original(*args, **kwargs))
        ids, pads = out[3], out[5]                 # per item: (L_i, 3) int ids of (t, h, w), (L_i,) padding mask
        shift = [torch.cat([offsets.new_zeros(1), o]).to(p.device, p.dtype) for o, p in zip(offsets, ids)]
        out[3] = [p + s * (~m)[:, None].to(p.dtype) for p, s, m in zip(ids, shift, pads)]
        return tuple(out)

    backbone.patchify_and_embed = patchify_and_embed
    try:
        yield
    finally:
        del backbone.patchify_and_embed            # the class's method again
