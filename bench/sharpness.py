"""What the sharpness and perceptual measures reward, on known degradations of natural images.

Each BSDS500 `val` image (landscape, centre 384x256, the Kodak ÷2 grid; never Kodak) is degraded in ways
whose effect is known — Gaussian noise, blur, 2x down-and-up sampling — and scored against the clean
image by the HF ratio, the detail match, LPIPS-alex and DISTS. A measure that noise can win scores the
noisy image *better* than the clean one. Prints the mean ± s.e. over images per degradation.

    python bench/sharpness.py [--images 24] [--data ROOT]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.environment import checked
from jscgc import checks
from jscgc.checks import UsageError
from jscgc.imagedata import TEST_GRID, image_files, val_grid
from jscgc.metrics import available_metrics, evaluate_images

MEASURES = ["hf_ratio", "detail_match", "lpips_alex", "dists"]
CROP = TEST_GRID[::-1]                  # width, height: the Kodak ÷2 grid


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = math.ceil(3 * sigma)
    g = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype) ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g, groups=3)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.transpose(2, 3), groups=3)


def degradations(x: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The clean image and its degradations, all (1, 3, H, W) in [0, 1]."""
    noise = lambda s: (x + s * torch.randn(x.shape, generator=g)).clamp(0, 1)  # noqa: E731
    down_up = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
    return {"clean": x, "noise σ=0.02": noise(0.02), "noise σ=0.08": noise(0.08), "blur σ=1": _blur(x, 1.0),
            "blur σ=2": _blur(x, 2.0), "2x down-up": down_up}


def _check_images(folder: Path, count: int) -> None:
    """The folder holds at least ``count`` images, the first ``count`` each at least 384x256 either way
    round (their headers are read, not the pixels)."""
    from PIL import Image, UnidentifiedImageError

    try:
        files = image_files(folder)
    except FileNotFoundError as err:
        raise UsageError(f"--data: {err}") from None
    if len(files) < count:
        raise UsageError(f"--images {count}: {folder} holds only {len(files)}")
    for f in files[:count]:
        try:
            with Image.open(f) as image:
                size = sorted(image.size)
        except (OSError, UnidentifiedImageError) as err:
            raise UsageError(f"--data: {f} cannot be read as an image ({err})") from None
        if size[0] < CROP[1] or size[1] < CROP[0]:
            raise UsageError(f"--data: {f} is {size[1]}x{size[0]}, smaller than the {CROP[0]}x{CROP[1]} crop")


def check(argv) -> tuple[argparse.Namespace, Path]:
    """Every input checked before any image is scored: one line naming the bad one (exit 2)."""
    p = checks.Parser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--data", default=None, help="data root with bsds500/ (else JSCGC_DATA or ../shared/data)")
    a = p.parse_args(argv)
    checks.int_at_least("--images", a.images, 2)          # a standard error needs two
    val = checks.data_folder("--data", a.data, need="bsds500/val") / "bsds500" / "val"
    _check_images(val, a.images)
    return a, val


def main(argv: list[str] | None = None) -> dict:
    a, val = checked("sharpness", lambda: check(argv))
    ready, missing = available_metrics(MEASURES)
    if missing:
        print("sharpness: not measured: " + "; ".join(f"{k} ({v})" for k, v in missing.items()), file=sys.stderr)
    scores: dict[str, dict[str, list[float]]] = {}
    g = torch.Generator().manual_seed(0)
    for _, image in val_grid(a.data, a.images):                 # landscape, centre 256x384: the Kodak ÷2 grid
        x = image[None]
        for name, y in degradations(x, g).items():
            for m, v in evaluate_images(x, y, ready).items():
                scores.setdefault(name, {}).setdefault(m, []).append(v[0])
    names = [m for m in MEASURES if m in ready]
    print(f"{a.images} BSDS500 val images, 384x256; mean ± s.e. over images")
    print("| degradation | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for name, per in scores.items():
        cells = []
        for m in names:
            v = torch.tensor(per[m], dtype=torch.float64)
            cells.append(f"{v.mean():.3f} ± {v.std() / math.sqrt(len(v)):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
