"""Classifier-free guidance (Ho & Salimans 2022) and the ŷ-dropout that trains for it: the "nothing received"
condition, dropping ŷ in training, and the guided velocity at sampling (used by :class:`jscgc.system.JSCGC`)."""
from __future__ import annotations

import torch
from torch import nn

from jscgc.types import Received

__all__ = ["NULL_SNR_DB", "Guided", "drop_condition", "null_condition"]

NULL_SNR_DB = -30.0
"""SNR of the "nothing received" condition used for ŷ-dropout and guidance (zero symbols)."""


def null_condition(received: Received) -> Received:
    """"Nothing received": zero symbols at ``NULL_SNR_DB`` (the condition of an unconditional model)."""
    return Received(torch.zeros_like(received.symbols), torch.full_like(received.snr_db, NULL_SNR_DB))


def drop_condition(received: Received, rate: float, generator: torch.Generator | None) -> Received:
    """ŷ-dropout: each sample's condition replaced by :func:`null_condition` with probability ``rate``."""
    drop = torch.rand(received.snr_db.shape[0], generator=generator, device=received.snr_db.device) < rate
    null = null_condition(received)
    mask = drop.view(-1, *([1] * (received.symbols.dim() - 1)))
    return Received(torch.where(mask, null.symbols, received.symbols),
                    torch.where(drop, null.snr_db, received.snr_db), received.gain)


class Guided(nn.Module):
    """Classifier-free guidance (Ho & Salimans 2022) of a velocity model trained with ŷ-dropout:
    v = v(x, t, ∅) + w (v(x, t, ŷ) − v(x, t, ∅)); w = 1 is the plain conditional model."""

    def __init__(self, velocity: nn.Module, scale: float):
        super().__init__()
        self.velocity, self.scale = velocity, scale

    def forward(self, x_t, t, received: Received):
        null = null_condition(received)
        gain = None if received.gain is None else torch.cat([received.gain, received.gain])
        both = Received(torch.cat([received.symbols, null.symbols]), torch.cat([received.snr_db, null.snr_db]), gain)
        v_cond, v_null = self.velocity(torch.cat([x_t, x_t]), torch.cat([t, t]), both).chunk(2)
        return v_null + self.scale * (v_cond - v_null)
