"""A communication system that works on images but codes and generates in a latent space.

    image x (B, 3, H, W) ─frozen extractor.encode─► z0 (B, C, H/f, W/f) ─► inner system ─► ẑ ─decode─► x̂

The inner system (a :class:`~jscgc.system.JSCGC` or :class:`~jscgc.system.MSEReconstruction`)
keeps its own objective and sampler; this wrapper only moves between pixels and latents, on the
training device, so the data loader hands over plain image crops. With ``pixel_loss=True`` whatever
the inner system trains with MSE — an MSE decoder, or a JSCGC's one-pass estimate in its "warmup"
stage (``estimate``/``trains_estimate``) — is compared with the image after decoding instead of with
the latent (gradients pass through the frozen decoder); calibration probe 2 found that much better
than latent MSE. Other objectives (the flow-matching loss) stay in the latent space.

With ``anchor_lowpass=f`` (for a JSCGC with the posterior-mean prior) the receiver replaces the coarse
band of its sample — the part left by f×f average pooling, smoothly up-sampled — with that of the
decoded MSE estimate μ(ŷ): the layout and colours then come from the estimate that is best at them and
the detail from the generator. This is ILVR's low-frequency replacement (Choi et al., ICCV 2021), done
once on the decoded image because the flow runs in the latent space.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jscgc.system import Received

__all__ = ["LatentSystem", "lowpass", "anchor"]


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


class LatentSystem(nn.Module):
    """Images in [0, 1] in and out; ``inner`` works on ``extractor`` latents.

    Args:
        inner: a CommSystem on latents (B, C, h, w).
        extractor: a frozen latent extractor (:mod:`jscgc.latents`).
        pixel_loss: for an inner system with an MSE-trained ``estimate``, compare decoded images (pixels)
            instead of latents while ``inner.trains_estimate``.
        anchor_lowpass: 0 (off) or the pooling factor f of the band taken from μ(ŷ) at sampling.
    """

    def __init__(self, inner: nn.Module, extractor: nn.Module, pixel_loss: bool = False, anchor_lowpass: int = 0):
        super().__init__()
        if anchor_lowpass < 0 or (anchor_lowpass and getattr(inner, "prior_net", None) is None):
            raise ValueError(f"LatentSystem: anchor_lowpass must be 0, or a factor >= 1 for a JSCGC with the "
                             f"posterior-mean prior; got {anchor_lowpass} for {type(inner).__name__}")
        self.anchor_lowpass = anchor_lowpass
        self.inner = inner
        self.extractor = extractor.eval().requires_grad_(False)
        self.pixel_loss = pixel_loss
        if pixel_loss and not hasattr(inner, "estimate"):
            raise ValueError(f"LatentSystem: pixel_loss needs an inner system with an MSE-trained `estimate` "
                             f"(MSEReconstruction, JSCGC), got {type(inner).__name__}")

    @property
    def stages(self) -> tuple[str, ...]:
        """The inner system's training stages (see :func:`jscgc.train.train_stages`)."""
        return tuple(getattr(self.inner, "stages", ()))

    @property
    def stage_steps(self) -> dict[str, int]:
        return dict(getattr(self.inner, "stage_steps", {}))

    def set_stage(self, stage: str) -> None:
        self.inner.set_stage(stage)

    def train(self, mode: bool = True):
        super().train(mode)
        self.extractor.eval()
        return self

    def encode_latent(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.extractor.encode(images)

    def latent_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        f = self.extractor.factor
        return (shape[0], self.extractor.channels, shape[-2] // f, shape[-1] // f)

    def transmit(self, images, snr_db, generator=None) -> Received:
        return self.inner.transmit(self.encode_latent(images), snr_db, generator)

    def loss(self, images, snr_db, generator=None) -> torch.Tensor:
        z0 = self.encode_latent(images)
        if not (self.pixel_loss and self.inner.trains_estimate):
            return self.inner.loss(z0, snr_db, generator)
        received = self.inner.transmit(z0, snr_db, generator)
        z_hat = self.inner.estimate(received, tuple(z0.shape))
        return (self.extractor.decode_unclamped(z_hat) - images).pow(2).mean()

    def receive(self, received: Received, generator=None, steps: int = 9,
                shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """x̂ (B, 3, H, W) for an image ``shape`` (B, 3, H, W)."""
        if shape is None:
            raise ValueError("LatentSystem.receive: the image shape (B, 3, H, W) is needed")
        z = self.inner.receive(received, generator, steps, self.latent_shape(shape))
        with torch.no_grad():
            x = self.extractor.decode(z)
            if not self.anchor_lowpass:
                return x
            mu = self.extractor.decode(self.inner.prior_mean(received, self.latent_shape(shape)))
            return anchor(x, mu, self.anchor_lowpass)

    def forward(self, images, snr_db, generator=None, steps: int = 9) -> torch.Tensor:
        return self.receive(self.transmit(images, snr_db, generator), generator, steps, images.shape)

    def config(self) -> dict[str, Any]:
        return {"class": "LatentSystem", "inner": self.inner.config(),
                "extractor": type(self.extractor).__name__, "pixel_loss": self.pixel_loss,
                "anchor_lowpass": self.anchor_lowpass}
