"""LPIPS v0.1 (Zhang et al. 2018) and DISTS (Ding et al. 2020), with their ImageNet backbones in plain torch.

The paper's Fig. 4 scores receivers by LPIPS; DISTS is the same kind of measure, more tolerant of texture
that differs in place but not in kind (so it does not punish a generator for re-drawing grass). Both are
hand-written here because their reference packages build the backbones through torchvision, which does
not import against the CPU torch this project runs on, and no core code may need torchvision. The layers
are laid out as torchvision's ``features`` (same module indices), so the shipped state dicts load by key:

========= ===================================== ============================ ======================================
network   backbone file (under ``lpips/``)      taps (``features`` indices)  channels per tap
========= ===================================== ============================ ======================================
alex      ``alexnet_features.pth``              1, 4, 7, 9, 11 (ReLUs)       64, 192, 384, 256, 256
vgg       ``vgg16_features.pth``                3, 8, 15, 22, 29 (ReLUs)     64, 128, 256, 512, 512
squeeze   ``squeezenet1_1_features.pth``        1, 4, 7, 9, 10, 11, 12       64, 128, 256, 384, 384, 512, 512
========= ===================================== ============================ ======================================

Conventions, as the reference implementations have them (the calibration tests pin them to the official
values on TID2013 pairs, ``tests/test_perceptual.py``):

* :class:`LPIPS` takes RGB in [−1, 1]; inside, x ↦ (x − shift) / scale with LPIPS' shift (−.030, −.088,
  −.188) and scale (.458, .448, .450). Each tapped map is divided by its channel norm (+1e-10), the squared
  difference weighted per channel by the v0.1 linear head (``<net>.pth``), averaged over space and summed
  over taps (Zhang et al. 2018, Eq. 1).
* :class:`DISTS` takes RGB in [0, 1]; inside, ImageNet mean/std. VGG16 with every max-pool replaced by an
  L2 pooling (3x3 Hann window, stride 2); the input itself is tap 0. Per channel of each tap, a structure
  term S1 = (2 μx μy + c) / (μx² + μy² + c) and a texture term S2 = (2 σxy + c) / (σx² + σy² + c), c = 1e-6,
  weighted by α and β (``dists/alpha_beta.pt``, normalised to sum 1); DISTS = 1 − Σ (α S1 + β S2).

Both split into ``features(x)`` and ``compare(fx, fy)`` so that a reference's features are computed once
and compared with many outputs (:class:`jscgc.metrics.MemoisedFeatures`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["alexnet_features", "vgg16_features", "squeezenet11_features", "L2Pool", "LPIPS", "DISTS",
           "BACKBONES", "load_lpips", "load_dists"]


def _relu() -> nn.Module:
    """In place: every ReLU follows a convolution whose output nothing else keeps, and every tapped map is
    a ReLU's output followed by a pooling or a convolution, which never write to their input."""
    return nn.ReLU(inplace=True)


def alexnet_features() -> nn.Sequential:
    """torchvision's ``alexnet().features``: 5 convolutions with ReLUs and 3 max-pools, indices 0–12."""
    return nn.Sequential(nn.Conv2d(3, 64, 11, 4, 2), _relu(), nn.MaxPool2d(3, 2),
                         nn.Conv2d(64, 192, 5, padding=2), _relu(), nn.MaxPool2d(3, 2),
                         nn.Conv2d(192, 384, 3, padding=1), _relu(), nn.Conv2d(384, 256, 3, padding=1), _relu(),
                         nn.Conv2d(256, 256, 3, padding=1), _relu(), nn.MaxPool2d(3, 2))


def vgg16_features(pool=lambda channels: nn.MaxPool2d(2, 2)) -> nn.Sequential:
    """torchvision's ``vgg16().features`` (13 3x3 convolutions with ReLUs, indices 0–30); ``pool(channels)``
    builds each of the 5 down-sampling layers (max-pooling for LPIPS, :class:`L2Pool` for DISTS)."""
    layers, cin = [], 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if item == "M":
            layers.append(pool(cin))
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1), _relu()]
            cin = item
    return nn.Sequential(*layers)


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expansions concatenated (all with ReLU)."""

    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], 1)


def squeezenet11_features() -> nn.Sequential:
    """torchvision's ``squeezenet1_1().features``, indices 0–12 (ceil-mode max-pools at 2, 5, 8)."""
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
    return nn.Sequential(nn.Conv2d(3, 64, 3, 2), _relu(), pool(), Fire(64, 16, 64), Fire(128, 16, 64), pool(),
                         Fire(128, 32, 128), Fire(256, 32, 128), pool(), Fire(256, 48, 192), Fire(384, 48, 192),
                         Fire(384, 64, 256), Fire(512, 64, 256))


class L2Pool(nn.Module):
    """DISTS' L2 pooling: sqrt(Hann-window blur of x² + 1e-12) with stride 2, one 3x3 window per channel
    (``np.hanning(5)[1:-1]`` outer itself, normalised to sum 1), padding 1: (B, C, H, W) -> (B, C, ⌈H/2⌉, ⌈W/2⌉)."""

    def __init__(self, channels: int):
        super().__init__()
        a = np.hanning(5)[1:-1]
        g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
        self.register_buffer("filter", (g / g.sum()).expand(channels, 1, 3, 3).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (F.conv2d(x * x, self.filter, stride=2, padding=1, groups=x.shape[1]) + 1e-12).sqrt()


#: network -> (backbone builder, tapped ``features`` indices, backbone file, channels per tap)
BACKBONES = {
    "alex": (alexnet_features, (1, 4, 7, 9, 11), "alexnet_features.pth", (64, 192, 384, 256, 256)),
    "vgg": (vgg16_features, (3, 8, 15, 22, 29), "vgg16_features.pth", (64, 128, 256, 512, 512)),
    "squeeze": (squeezenet11_features, (1, 4, 7, 9, 10, 11, 12), "squeezenet1_1_features.pth",
                (64, 128, 256, 384, 384, 512, 512)),
}


def _tapped(layers: nn.Sequential, taps: tuple[int, ...], x: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of ``layers`` after each index in ``taps`` (the layers past the last tap are not run)."""
    maps, x = [], x.contiguous(memory_format=torch.channels_last)      # 10–20 % faster convolutions on CPU
    for i, layer in enumerate(layers[:taps[-1] + 1]):
        x = layer(x)
        if i in taps:
            maps.append(x)
    return maps


class LPIPS(nn.Module):
    """LPIPS v0.1 with backbone ``net`` ("alex", "vgg" or "squeeze"); random weights until loaded
    (:func:`load_lpips`). ``forward(a, b)``: two (B, 3, H, W) RGB images in [−1, 1] -> (B,)."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in BACKBONES:
            raise ValueError(f"LPIPS: net {net!r} is not one of {sorted(BACKBONES)}")
        build, self.taps, _, channels = BACKBONES[net]
        self.net, self.features_net = net, build()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        self.register_buffer("shift", torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([.458, .448, .450]).view(1, 3, 1, 1))
        self.requires_grad_(False).eval().to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Channel-unit-normalised tapped maps of (B, 3, H, W) images in [−1, 1]: one (B, C_l, H_l, W_l) per tap."""
        maps = _tapped(self.features_net, self.taps, (x - self.shift) / self.scale)
        return [m / (m.pow(2).sum(1, keepdim=True).sqrt() + 1e-10) for m in maps]

    def compare(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """Σ_l mean_hw (head_l · (fa_l − fb_l)²): (B,)."""
        return sum(head((a - b).pow(2)).mean((1, 2, 3)) for a, b, head in zip(fa, fb, self.heads))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.compare(self.features(a), self.features(b))


class DISTS(nn.Module):
    """DISTS; random weights until loaded (:func:`load_dists`). ``forward(a, b)``: two (B, 3, H, W) RGB
    images in [0, 1] -> (B,), 0 for identical images."""

    CHANNELS = (3, 64, 128, 256, 512, 512)

    def __init__(self):
        super().__init__()
        self.features_net = vgg16_features(pool=L2Pool)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.register_buffer("alpha", torch.full((1, sum(self.CHANNELS), 1, 1), 0.1))
        self.register_buffer("beta", torch.full((1, sum(self.CHANNELS), 1, 1), 0.1))
        self.requires_grad_(False).eval().to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input itself, then the ReLU maps ending VGG16's five stages: (B, C_k, H_k, W_k), C = CHANNELS."""
        return [x] + _tapped(self.features_net, (3, 8, 15, 22, 29), (x - self.mean) / self.std)

    def compare(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """1 − Σ_k Σ_c (α S1 + β S2) with α, β normalised by their joint sum: (B,)."""
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, self.CHANNELS, dim=1)
        betas = torch.split(self.beta / total, self.CHANNELS, dim=1)
        score, c = 0, 1e-6
        for a, b, alpha, beta in zip(fa, fb, alphas, betas):
            mu_a, mu_b = a.mean((2, 3), keepdim=True), b.mean((2, 3), keepdim=True)
            structure = (2 * mu_a * mu_b + c) / (mu_a ** 2 + mu_b ** 2 + c)
            var_a, var_b = (a - mu_a).pow(2).mean((2, 3), keepdim=True), (b - mu_b).pow(2).mean((2, 3), keepdim=True)
            cov = (a * b).mean((2, 3), keepdim=True) - mu_a * mu_b
            texture = (2 * cov + c) / (var_a + var_b + c)
            score = score + (alpha * structure + beta * texture).sum(1)
        return 1 - score.flatten()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.compare(self.features(a), self.features(b))


def _read(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:                     # truncated or not a torch file
        raise FileNotFoundError(f"{path} is damaged ({type(err).__name__}: {err})") from None


def _load_backbone(layers: nn.Sequential, path: Path) -> None:
    """Load torchvision-layout ``features.<i>.…`` weights; the L2 pools' fixed filters are not in the file."""
    state = {k.removeprefix("features."): v for k, v in _read(path).items()}
    try:
        missing, unexpected = layers.load_state_dict(state, strict=False)
    except RuntimeError as err:                  # a tensor of the wrong shape
        raise FileNotFoundError(f"{path} does not hold this backbone's weights ({str(err).splitlines()[-1].strip()})") from None
    missing = [k for k in missing if not k.endswith(".filter")]
    if missing or unexpected:
        raise FileNotFoundError(f"{path} does not hold this backbone's weights (missing {missing[:3]}, "
                                f"unexpected {unexpected[:3]})")


def load_lpips(net: str, folder: str | Path) -> LPIPS:
    """LPIPS-``net`` from ``folder`` (``<weights>/lpips``): the backbone file of :data:`BACKBONES` and the
    v0.1 heads ``<net>.pth`` (keys ``lin<l>.model.1.weight``). FileNotFoundError names a missing file."""
    folder, model = Path(folder), LPIPS(net)
    _load_backbone(model.features_net, folder / BACKBONES[net][2])
    heads = _read(folder / f"{net}.pth")
    for i, head in enumerate(model.heads):
        head.weight.copy_(heads[f"lin{i}.model.1.weight"])
    return model


def load_dists(root: str | Path) -> DISTS:
    """DISTS from the weights root: ``lpips/vgg16_features.pth`` (the VGG16 both metrics use) and
    ``dists/alpha_beta.pt`` (keys ``alpha``, ``beta``, each (1, 1475, 1, 1))."""
    root, model = Path(root), DISTS()
    _load_backbone(model.features_net, root / "lpips" / BACKBONES["vgg"][2])
    weights = _read(root / "dists" / "alpha_beta.pt")
    model.alpha.copy_(weights["alpha"])
    model.beta.copy_(weights["beta"])
    return model
