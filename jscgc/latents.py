"""Latent extractors: images in [0, 1] <-> the latent space the receiver generates in.

One interface, three implementations:

* :class:`TAEF2` — the tiny autoencoder for the FLUX.2 latent space (32 channels, 1/8 resolution),
  written from ``weights/taef2/ARCHITECTURE.md`` and loading the shipped state dicts. The embedded
  default: it needs no outside weights.
* :class:`FluxVAE` — diffusers' ``AutoencoderKL`` from a local checkpoint folder or a hub id, with
  its ``scaling_factor`` and ``shift_factor`` (the Z-Image route: 16 channels, 1/8 resolution).
* :class:`IdentityLatent` — pixel space, for tests.

Every extractor has ``encode(images (B, 3, H, W) in [0, 1]) -> latents (B, C, H/f, W/f)``,
``decode(latents) -> images in [0, 1]``, and the attributes ``channels`` and ``factor``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

__all__ = ["TAEF2", "FluxVAE", "IdentityLatent", "weights_root", "load_extractor"]


def weights_root(path: str | os.PathLike | None = None) -> Path | None:
    """Where pretrained weights live: ``path``, else ``$JSCGC_WEIGHTS``, else ``../shared/weights`` when
    that folder exists (beside the checkout or the working directory); None when no default exists.

    A folder named explicitly (``path`` or a set ``$JSCGC_WEIGHTS``) that does not exist is an error, not a
    fallback: FileNotFoundError naming it."""
    for given, how in ((path, "weights folder"), (os.environ.get("JSCGC_WEIGHTS") or None, "JSCGC_WEIGHTS")):
        if given:
            if not Path(given).is_dir():
                raise FileNotFoundError(f"{how} {given} does not exist (it should hold taef2/, lpips/, dists/ …)")
            return Path(given)
    for c in (Path(__file__).resolve().parents[1].parent / "shared" / "weights", Path.cwd().parent / "shared" / "weights"):
        if c.is_dir():
            return c
    return None


class _Pool(nn.Module):
    """The TAEF2 'pool' branch: 1x1 conv n->256, GroupNorm(4, 256), ReLU, 1x1 conv 256->n."""

    def __init__(self, n: int):
        super().__init__()
        self.pool = nn.Sequential(nn.Conv2d(n, 256, 1, bias=False), nn.GroupNorm(4, 256), nn.ReLU(),
                                  nn.Conv2d(256, n, 1, bias=False))


class _Block(nn.Module):
    """Residual block of TAEF2: optional x + pool(x), then ReLU(conv(x) + x)."""

    def __init__(self, n: int, with_pool: bool = False):
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.pool = _Pool(n).pool if with_pool else None
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.act(self.conv(x) + x)


class _SoftClamp(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z / 3) * 3


def _conv(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


def _taef2_encoder(c: int = 64, latent: int = 32) -> nn.Sequential:
    down = lambda: _conv(c, c, stride=2, bias=False)  # noqa: E731
    return nn.Sequential(_conv(3, c), _Block(c), down(), _Block(c), _Block(c), _Block(c), down(),
                         _Block(c), _Block(c), _Block(c), down(), _Block(c, True), _Block(c, True),
                         _Block(c, True), _conv(c, latent))


def _taef2_decoder(c: int = 64, latent: int = 32) -> nn.Sequential:
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    nb = lambda: _conv(c, c, bias=False)  # noqa: E731
    return nn.Sequential(_SoftClamp(), _conv(latent, c), nn.ReLU(), _Block(c, True), _Block(c, True),
                         _Block(c, True), up(), nb(), _Block(c), _Block(c), _Block(c), up(), nb(),
                         _Block(c), _Block(c), _Block(c), up(), nb(), _Block(c), _conv(c, 3))


class TAEF2(nn.Module):
    """Tiny autoencoder for the FLUX.2 latent space (madebyollin/taesd, MIT).

    images (B, 3, H, W) in [0, 1], H and W multiples of 8 -> latents (B, 32, H/8, W/8), std ≈ 0.8,
    no scale or shift. Architecture as in ``ARCHITECTURE.md`` beside the weights.

    Args:
        weights: folder with ``taef2_encoder.pth`` and ``taef2_decoder.pth``; None gives random
            weights (tests). See :func:`TAEF2.from_pretrained`.
        channels_last: on the CPU, run both networks on channels-last (NHWC) activations, which
            oneDNN's convolutions take faster; the parameters stay in the default layout (state dicts and
            checkpoints unchanged) and outputs are returned contiguous. Only float32 rounding differs
            from ``False`` (docs/performance.md, 'CPU training: before and after').
    """

    channels = 32
    factor = 8

    def __init__(self, weights: str | os.PathLike | None = None, channels_last: bool = True):
        super().__init__()
        self.channels_last = channels_last
        self.encoder = _taef2_encoder()
        self.decoder = _taef2_decoder()
        if weights is not None:
            folder = Path(weights)
            for name, module in (("encoder", self.encoder), ("decoder", self.decoder)):
                file = folder / f"taef2_{name}.pth"
                if not file.is_file():
                    raise FileNotFoundError(f"TAEF2 weights: {file} is missing (expected the "
                                            "taef2_encoder.pth/taef2_decoder.pth pair)")
                try:
                    module.load_state_dict(torch.load(file, map_location="cpu", weights_only=True), strict=True)
                except Exception as err:      # unpickling, truncation, wrong keys or shapes: all one answer
                    raise ValueError(f"{file} is not a valid TAEF2 checkpoint ({type(err).__name__})") from None

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, channels_last: bool = True) -> "TAEF2":
        """Load the shipped weights from ``path`` or ``<weights_root>/taef2``."""
        if path is None:
            root = weights_root()
            if root is None:
                raise FileNotFoundError("TAEF2 weights: no weights folder; pass a path or set "
                                        "JSCGC_WEIGHTS to a folder containing taef2/")
            path = root / "taef2"
        return cls(path, channels_last)

    def _run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``net(x)`` for x (B, C, H, W), on channels-last activations when ``channels_last`` applies (a
        4-d CPU tensor); the output (B, C', H', W') in the default contiguous layout."""
        if not (self.channels_last and x.device.type == "cpu" and x.dim() == 4):
            return net(x)
        return net(x.contiguous(memory_format=torch.channels_last)).contiguous()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.factor)
        return self._run(self.encoder, images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode_unclamped(latents).clamp(0, 1)

    def decode_unclamped(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoder without the final clamp (keeps gradients for pixel-space losses)."""
        return self._run(self.decoder, latents)


class FluxVAE(nn.Module):
    """The FLUX VAE used by Z-Image, through diffusers' ``AutoencoderKL``.

    latents = (mean of q(z | x) − shift_factor) · scaling_factor, as the Z-Image pipeline uses them;
    images go in as [0, 1] and are mapped to the VAE's [−1, 1].

    Args:
        vae: an ``AutoencoderKL`` (see :meth:`from_pretrained` for loading).
    """

    factor = 8

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae
        cfg = vae.config
        self.channels = int(cfg.latent_channels)
        self.scaling = float(cfg.scaling_factor or 1.0)
        self.shift = float(getattr(cfg, "shift_factor", None) or 0.0)
        self.factor = 2 ** (len(cfg.block_out_channels) - 1)

    @classmethod
    def from_pretrained(cls, path: str, subfolder: str | None = "vae", **kwargs) -> "FluxVAE":
        """Load from a local Z-Image/FLUX checkpoint folder (its ``vae/``) or a hub id.

        Raises a one-line FileNotFoundError naming the path when the weights are not there."""
        from diffusers import AutoencoderKL

        local = Path(path)
        if local.exists() and subfolder and not (local / subfolder).is_dir():
            subfolder = None
        try:
            vae = AutoencoderKL.from_pretrained(path, subfolder=subfolder, **kwargs)
        except (OSError, ValueError) as err:
            raise FileNotFoundError(f"FLUX VAE: no weights at {path!r} (subfolder {subfolder!r}): "
                                    f"{str(err).splitlines()[0]}") from None
        return cls(vae)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.factor)
        dist = self.vae.encode(images * 2 - 1).latent_dist
        return (dist.mean - self.shift) * self.scaling

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode_unclamped(latents).clamp(0, 1)

    def decode_unclamped(self, latents: torch.Tensor) -> torch.Tensor:
        return (self.vae.decode(latents / self.scaling + self.shift).sample + 1) / 2


class IdentityLatent(nn.Module):
    """Pixel space as the 'latent': encode and decode are the identity (decode clamps to [0, 1])."""

    channels = 3
    factor = 1

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, 1)
        return images

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.clamp(0, 1)

    def decode_unclamped(self, latents: torch.Tensor) -> torch.Tensor:
        return latents


def _check_images(images: torch.Tensor, factor: int) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images: expected (B, 3, H, W) RGB in [0, 1], got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"images: height and width must be multiples of {factor}, got {h}x{w}")


def load_extractor(name: str, path: str | None = None) -> nn.Module:
    """``"taef2"`` (shipped weights), ``"flux"`` (``path``: Z-Image/FLUX checkpoint or hub id) or
    ``"identity"``; the returned module is in eval mode with frozen parameters."""
    if name == "taef2":
        ext = TAEF2.from_pretrained(path)
    elif name == "flux":
        if path is None:
            raise ValueError("latents 'flux': give the Z-Image/FLUX checkpoint folder or hub id")
        ext = FluxVAE.from_pretrained(path)
    elif name == "identity":
        ext = IdentityLatent()
    else:
        raise ValueError(f"latents: expected 'taef2', 'flux' or 'identity', got {name!r}")
    ext.eval().requires_grad_(False)
    return ext
