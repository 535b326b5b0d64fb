"""The chunks of one optimiser step of :func:`jscgc.train.train`: the global batch is cut into processes ×
accumulation micro-batches ("chunks"), and chunk k of global step s gets its own random generator, seeded
by (seed, s, k) only, which draws its training SNRs and every random number of its loss. So the same
global batch gives the same numbers however many processes share it, and a resumed run the same numbers
as an uninterrupted one.
"""
from __future__ import annotations

import torch

from jscgc.types import Batch, LatentBatch

__all__ = ["chunk_generator", "draw_snr", "micro_batch", "batch_size_of"]


def chunk_generator(seed: int, step: int, chunk: int, device) -> torch.Generator:
    """The generator of chunk ``chunk`` of (global) step ``step``: a function of (seed, step, chunk) only."""
    seed = ((seed * 1_000_003 + step) * 10_007 + chunk) % (2 ** 63)
    return torch.Generator(device=device).manual_seed(seed)


def draw_snr(snr_db: float | list[float], n: int, generator: torch.Generator, device) -> torch.Tensor:
    """Training SNRs in dB of a chunk of ``n`` samples: (n,), all ``snr_db``, or for [low, high] drawn
    uniformly per sample by ``generator``."""
    if isinstance(snr_db, list):
        lo, hi = snr_db
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)
    return torch.full((n,), float(snr_db), device=device)


def micro_batch(batch: Batch, k: int, micro: int, device) -> Batch:
    """Micro-batch k of a batch (a tensor (B, *S) or a LatentBatch), ``micro`` samples, on ``device``."""
    if isinstance(batch, LatentBatch):
        return LatentBatch(*(t[k * micro:(k + 1) * micro].to(device) for t in batch))
    return batch[k * micro:(k + 1) * micro].to(device)


def batch_size_of(batch: Batch) -> tuple[int, int]:
    """(samples, pixels) of a batch: a LatentBatch or images (B, 3, H, W) have B·H·W pixels; other tensors
    (B, *S), e.g. vectors, have none (0)."""
    images = batch.images if isinstance(batch, LatentBatch) else batch
    n = images.shape[0]
    return n, n * images.shape[-2] * images.shape[-1] if images.dim() == 4 else 0
