"""Training crops of several sizes, shared by every method of a preset (docs/design.md, "Crop schedule").

A backbone trained only on 64x64 crops (4x4 encoder tokens) meets a 24x16-token grid at test and does not
carry texture to it (docs/resolution_probe.md). A crop schedule ``((h, w, share), ...)`` trains on crops of
several sizes up to the test grid. Each optimiser step draws one size with probability ∝ its share — from
the data generator, so a resumed run draws the same sizes — then a batch of that size whose sample count
keeps the pixels per step near those of the asked batch of base crops::

    n = max(1, round(B · crop² / (h · w)))          (B = TrainConfig.batch_size, crop = Preset.crop)

so a step costs about the same at every size and a budget of steps is about the same budget of pixels; the
examples seen differ, and the training loop counts both (:class:`jscgc.plan.StageRecord`). With a latent
pool each size has its own pool of crops drawn once (seed + k for size k) holding about the base pool's
pixels, ``ceil(latent_pool · crop² / (h · w))`` crops, their latents encoded once. A landscape size is cut
from every image turned landscape (:class:`jscgc.imagedata.FolderCrops`), as the test images are.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from jscgc.imagedata import FolderCrops
from jscgc.latent_system import training_sources
from jscgc.types import Batch

__all__ = ["check_schedule", "MixedSizes", "preset_sources"]


def check_schedule(schedule, token_px: int) -> None:
    """One line naming what is wrong with a schedule ``((h, w, share), ...)``: sizes in whole tokens of
    ``token_px`` pixels, landscape or square (h <= w), shares > 0."""
    for entry in schedule:
        ok = len(entry) == 3 and all(isinstance(v, int) and v > 0 for v in entry[:2]) and entry[2] > 0
        if not ok or entry[0] > entry[1] or entry[0] % token_px or entry[1] % token_px:
            raise ValueError(f"crop_schedule: expected (height, width, share) entries with height <= width, both "
                             f"multiples of {token_px} pixels, share > 0; got {tuple(entry)}")


class MixedSizes:
    """A data source that draws, per call, one of ``sources`` with probability ∝ ``shares`` and asks it for
    the batch that keeps the pixels near the asked batch of ``base_area``-pixel crops (the module doc).

    Args:
        sources: data sources ``source(n, generator)``, one per size.
        areas: pixels (h · w) of each source's crops.
        shares: the weight of each size.
        base_area: pixels of the crop the asked batch size is counted in.
    """

    def __init__(self, sources, areas: list[int], shares: list[float], base_area: int):
        self.sources, self.areas, self.base_area = list(sources), list(areas), base_area
        self.weights = torch.tensor([float(s) for s in shares], dtype=torch.float64)

    def samples(self, k: int, batch_size: int) -> int:
        """The sample count of a batch of size ``k`` when ``batch_size`` base crops are asked."""
        return max(1, round(batch_size * self.base_area / self.areas[k]))

    def sample_counts(self, batch_size: int) -> list[int]:
        """Every batch's sample count this source can give (what :func:`jscgc.train.train` checks first)."""
        return [self.samples(k, batch_size) for k in range(len(self.sources))]

    def __call__(self, batch_size: int, generator: torch.Generator) -> Batch:
        k = int(torch.multinomial(self.weights, 1, generator=generator))
        return self.sources[k](self.samples(k, batch_size), generator)


def preset_sources(crops: FolderCrops, preset, extractor: nn.Module, seed: int) -> dict:
    """The training sources of a preset by kind ("pixels", "latents"; :func:`training_sources`): its base
    crops, or with ``preset.crop_schedule`` a :class:`MixedSizes` over its sizes (one pool each)."""
    if not preset.crop_schedule:
        return training_sources(crops, extractor, preset.latent_pool, seed)
    base, per, areas = preset.crop ** 2, [], []
    for k, (h, w, _) in enumerate(preset.crop_schedule):
        pool = math.ceil(preset.latent_pool * base / (h * w)) if preset.latent_pool else 0
        per.append(training_sources(crops.at((h, w)), extractor, pool, seed + k))
        areas.append(h * w)
    shares = [share for _, _, share in preset.crop_schedule]
    return {kind: MixedSizes([p[kind] for p in per], areas, shares, base) for kind in ("pixels", "latents")}
