"""A communication system that works on images but codes and generates in a latent space.

    image x (B, 3, H, W) ─frozen extractor.encode─► z0 (B, C, H/f, W/f) ─► inner system ─► ẑ ─decode─► x̂

The inner system (a :class:`~jscgc.system.JSCGC` or :class:`~jscgc.system.MSEReconstruction`)
keeps its own objectives and sampler; this wrapper only moves between pixels and latents, on the
training device, so the data loader hands over plain image crops — or :class:`CachedLatents` batches
whose latents were encoded once. Its plan is the inner plan, each stage lifted to images: a stage whose
loss is the MSE of an estimate (``Stage.estimate``) is, with ``pixel_loss=True``, measured on the image
after decoding instead of on the latent (gradients pass through the frozen decoder; docs/recipe_search.md
measures it against latent MSE). Other objectives (the flow-matching loss) stay in latent space.

With ``anchor_lowpass=f`` (for a JSCGC with the posterior-mean prior) the receiver's output is its
sample with the coarse band — the part left by f×f average pooling, smoothly up-sampled — replaced by
that of the decoded MSE estimate μ(ŷ): the layout and colours then come from the estimate that is best
at them and the detail from the generator. This is ILVR's low-frequency replacement (Choi et al., ICCV
2021), done once on the decoded image because the flow runs in the latent space. The reception keeps
the generator's own sample and μ(ŷ) beside the output, so both can be scored as receivers.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jscgc.types import Batch, Dial, LatentBatch, Received, Reception, Stage

__all__ = ["LatentSystem", "CachedLatents", "training_sources", "lowpass", "anchor"]


def lowpass(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The coarse band of images (B, C, H, W): f×f average pooling (ceil mode), bilinearly up-sampled back
    to (H, W). A constant image is unchanged; ``factor`` 1 is the identity."""
    if factor == 1:
        return x
    coarse = F.avg_pool2d(x, factor, ceil_mode=True)
    return F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False)


def anchor(x: torch.Tensor, estimate: torch.Tensor, factor: int) -> torch.Tensor:
    """Images x (B, C, H, W) with their ``factor`` coarse band replaced by that of ``estimate``, in [0, 1]."""
    return (x + lowpass(estimate - x, factor)).clamp(0, 1)


class CachedLatents:
    """A data source of image crops whose latents are encoded once (a frozen extractor is deterministic).

    ``CachedLatents(images (N, 3, H, W), extractor)`` encodes the pool in chunks; calling it with
    ``(batch_size, generator)`` draws indices uniformly with replacement and returns a
    :class:`~jscgc.types.LatentBatch` — what :class:`LatentSystem`'s stages read without re-encoding.
    """

    def __init__(self, images: torch.Tensor, extractor: nn.Module, chunk: int = 64):
        self.images = images
        with torch.no_grad():
            self.latents = torch.cat([extractor.encode(images[i:i + chunk]) for i in range(0, len(images), chunk)])

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, n: int, generator: torch.Generator) -> LatentBatch:
        idx = torch.randint(len(self.images), (n,), generator=generator)
        return LatentBatch(self.images[idx], self.latents[idx])

    def pixels(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The same draw as a call, images only: the source for systems that work on pixels."""
        return self.images[torch.randint(len(self.images), (n,), generator=generator)]


def training_sources(crops, extractor: nn.Module, latent_pool: int = 0, seed: int = 12345) -> dict:
    """The training sources by kind of system: "pixels" for systems on images, "latents" for
    :class:`LatentSystem` s. ``crops(batch_size, generator) -> (B, 3, H, W)`` draws fresh crops; with
    ``latent_pool`` > 0 both kinds draw from one pool of that many crops (drawn once with ``seed``) whose
    latents are encoded once (:class:`CachedLatents`)."""
    if not latent_pool:
        return {"pixels": crops, "latents": crops}
    pool = CachedLatents(crops(latent_pool, torch.Generator().manual_seed(seed)), extractor)
    return {"pixels": pool.pixels, "latents": pool}


class LatentSystem(nn.Module):
    """Images in [0, 1] in and out; ``inner`` works on ``extractor`` latents.

    Args:
        inner: a CommSystem on latents (B, C, h, w).
        extractor: a frozen latent extractor (:mod:`jscgc.latents`).
        pixel_loss: measure the MSE of the inner stages that train an estimate (``Stage.estimate``) on
            decoded images (pixels) instead of latents.
        anchor_lowpass: 0 (off) or the pooling factor f of the band taken from μ(ŷ) at sampling.
    """

    data = "latents"

    def __init__(self, inner: nn.Module, extractor: nn.Module, pixel_loss: bool = False, anchor_lowpass: int = 0):
        super().__init__()
        # the anchor's band comes from μ(ŷ) of the posterior-mean prior: the inner system honours prior_noise
        anchorable = "prior_noise" in inner.dial_options
        if anchor_lowpass < 0 or (anchor_lowpass and not anchorable):
            raise ValueError(f"LatentSystem: anchor_lowpass must be 0, or a factor >= 1 for a JSCGC with the "
                             f"posterior-mean prior; got {anchor_lowpass} for {type(inner).__name__}")
        if pixel_loss and not any(stage.estimate is not None for stage in inner.plan()):
            raise ValueError(f"LatentSystem: pixel_loss needs an inner system with a stage that trains an MSE "
                             f"estimate (MSEReconstruction, JSCGC with mse_share > 0), got {type(inner).__name__}")
        self.anchor_lowpass = anchor_lowpass
        self.inner = inner
        self.extractor = extractor.eval().requires_grad_(False)
        self.pixel_loss = pixel_loss
        self.dial_options = inner.dial_options | ({"anchor"} if anchorable else set())
        self.views = ("output", "sample", "estimate") if anchor_lowpass else ("output",)

    def plan(self) -> tuple[Stage, ...]:
        """The inner plan lifted to images (parameter prefixes under ``inner.``; see the module doc)."""
        return tuple(self._lift(stage) for stage in self.inner.plan())

    def _lift(self, stage: Stage) -> Stage:
        pixel = self.pixel_loss and stage.estimate is not None
        loss = partial(self._pixel_mse, stage.estimate) if pixel else partial(self._latent_loss, stage.loss)
        return replace(stage, loss=loss, trains=tuple(f"inner.{prefix}" for prefix in stage.trains))

    def _latent_loss(self, inner_loss, batch: Batch, snr_db, generator=None) -> torch.Tensor:
        return inner_loss(self.latents_of(batch), snr_db, generator)

    def _pixel_mse(self, estimate, batch: Batch, snr_db, generator=None) -> torch.Tensor:
        """E ||decode(estimate(ŷ)) − x||² on the images, ŷ sent from their latents."""
        images = batch.images if isinstance(batch, LatentBatch) else batch
        z0 = self.latents_of(batch)
        z_hat = estimate(self.inner.transmit(z0, snr_db, generator), tuple(z0.shape))
        return (self.extractor.decode_unclamped(z_hat) - images).pow(2).mean()

    def train(self, mode: bool = True):
        super().train(mode)
        self.extractor.eval()
        return self

    def latents_of(self, batch: Batch) -> torch.Tensor:
        """The latents (B, C, h, w) of images (B, 3, H, W), or the cached ones of a LatentBatch."""
        if isinstance(batch, LatentBatch):
            return batch.latents
        with torch.no_grad():
            return self.extractor.encode(batch)

    def latent_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        f = self.extractor.factor
        return (shape[0], self.extractor.channels, shape[-2] // f, shape[-1] // f)

    def transmit(self, images: Batch, snr_db, generator=None) -> Received:
        return self.inner.transmit(self.latents_of(images), snr_db, generator)

    def receive(self, received: Received, dial: Dial = Dial(), generator: torch.Generator | None = None,
                shape: tuple[int, ...] | None = None) -> Reception:
        """For an image ``shape`` (B, 3, H, W): the inner system's ``dial.samples`` latent draws decoded
        (one decode each), μ(ŷ) decoded once, and the output: the average of the decoded draws, its coarse
        band replaced by μ's when anchored (``dial.anchor``, by default the factor built with; 0: off).
        The other settings (``dial.window`` among them) go to the inner system."""
        if shape is None:
            raise ValueError("LatentSystem.receive: the image shape (B, 3, H, W) is needed")
        dial.check(self.dial_options, type(self).__name__)
        factor = self.anchor_lowpass if dial.anchor is None else dial.anchor
        r = self.inner.receive(received, replace(dial, anchor=None), generator, self.latent_shape(shape))
        with torch.no_grad():
            samples = torch.stack([self.extractor.decode(draw) for draw in r.samples])
            if r.estimate is None:
                estimate = None
            elif r.estimate is r.output and dial.samples == 1:       # a decoder's estimate is its draw
                estimate = samples[0]
            else:
                estimate = self.extractor.decode(r.estimate)
        output = samples.mean(0)
        return Reception(anchor(output, estimate, factor) if factor else output, samples, estimate)

    def forward(self, images, snr_db, generator=None, dial: Dial = Dial()) -> torch.Tensor:
        return self.receive(self.transmit(images, snr_db, generator), dial, generator, images.shape).output

    def config(self) -> dict[str, Any]:
        return {"class": "LatentSystem", "inner": self.inner.config(),
                "extractor": type(self.extractor).__name__, "pixel_loss": self.pixel_loss,
                "anchor_lowpass": self.anchor_lowpass}
