"""Image data: the data root, robust image loading, Kodak and image-folder training crops.

Images leave this module as float RGB tensors in [0, 1], shape (3, H, W) or (B, 3, H, W).

Conversions (documented, not errors): greyscale and palette images are expanded to RGB; RGBA and
LA images are composited onto white; 16-bit images are scaled to [0, 1] from their full range.
Errors (one line naming the file): a file that is not an image or is truncated/corrupt, and an
image smaller than the requested crop.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

__all__ = ["data_root", "load_image", "image_files", "kodak", "KODAK_NAMES", "FolderCrops",
           "ImageError", "TEST_GRID", "to_landscape", "val_grid"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
KODAK_NAMES = tuple(f"kodim{i:02d}" for i in range(1, 25))


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file."""


def data_root(path: str | os.PathLike | None = None, need: str | None = None) -> Path:
    """The data folder: ``path`` (a ``--data`` flag), else ``$JSCGC_DATA``, else ``../shared/data``
    when it exists. With ``need`` (e.g. "kodak"), that subfolder must exist too.

    Raises FileNotFoundError with one line naming what is missing."""
    if path is not None:
        root, how = Path(path), "--data"
    elif os.environ.get("JSCGC_DATA"):
        root, how = Path(os.environ["JSCGC_DATA"]), "JSCGC_DATA"
    else:
        root, how = None, "default"
        for c in (Path(__file__).resolve().parents[1].parent / "shared" / "data",
                  Path.cwd().parent / "shared" / "data"):
            if c.is_dir():
                root = c
                break
        if root is None:
            raise FileNotFoundError("data root: no --data given, JSCGC_DATA unset and ../shared/data "
                                    "not found; point one of them at a folder holding kodak/ and bsds500/")
    if not root.is_dir():
        raise FileNotFoundError(f"data root ({how}): folder {root} does not exist")
    if need is not None and not (root / need).is_dir():
        raise FileNotFoundError(f"data root ({how}): {root / need} is missing")
    return root


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read one image file as float RGB (3, H, W) in [0, 1] (conversions in the module docstring)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return _to_tensor(im, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError(f"image {path}: cannot be read as an image ({err})") from None


def _to_tensor(im, path: Path) -> torch.Tensor:
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):        # 16/32-bit greyscale
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / top, 0, 1)[..., None].repeat(3, axis=2)
    elif im.mode == "F":
        a = np.clip(np.asarray(im, dtype=np.float64), 0, 1)[..., None].repeat(3, axis=2)
    else:
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        a = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    if a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
        raise ImageError(f"image {path}: unexpected decoded shape {a.shape}")
    return torch.from_numpy(a).permute(2, 0, 1).float().contiguous()


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted; error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"image folder {folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def center_crop(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Centre crop (…, H, W) to ``size`` (an int or (h, w)); error if the image is smaller."""
    h, w = (size, size) if isinstance(size, int) else size
    H, W = image.shape[-2:]
    if H < h or W < w:
        raise ImageError(f"centre crop: image {H}x{W} is smaller than the crop {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return image[..., top:top + h, left:left + w]


def kodak(root: str | os.PathLike | None = None, names: list[str] | None = None,
          crop: int | None = None, landscape: bool = False, downscale: int = 1) -> list[tuple[str, torch.Tensor]]:
    """The Kodak test set as [(name, image (3, H, W))] at full resolution (768x512 or 512x768).

    Args:
        root: data root (see :func:`data_root`); images are read from ``<root>/kodak``.
        names: a subset such as ["kodim01", "kodim23"] (default: all 24).
        crop: optional centre crop to crop x crop (after downscaling).
        landscape: rotate the six portrait images to 768 wide (default keeps both orientations).
        downscale: integer factor f of an f×f box-filter downscale (2: 384x256 / 256x384); 1 keeps the size.
    """
    if downscale < 1:
        raise ValueError(f"kodak downscale: expected an integer factor >= 1, got {downscale}")
    folder = data_root(root, need="kodak") / "kodak"
    names = list(names) if names is not None else list(KODAK_NAMES)
    out = []
    for name in names:
        path = folder / f"{name}.png"
        if not path.is_file():
            raise FileNotFoundError(f"kodak: {path} is missing")
        img = load_image(path)
        if landscape and img.shape[1] > img.shape[2]:
            img = img.transpose(1, 2).flip(2)
        if downscale > 1:
            img = torch.nn.functional.avg_pool2d(img[None], downscale)[0]
        out.append((name, center_crop(img, crop) if crop else img))
    return out


#: (H, W) of the test grid: Kodak ÷2 in landscape, 24x16 tokens of 16 px
TEST_GRID = (256, 384)


def to_landscape(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) turned a quarter clockwise when it is portrait (H > W), as :func:`kodak` does; else as is."""
    return image.transpose(1, 2).flip(2) if image.shape[1] > image.shape[2] else image


def val_grid(root: str | os.PathLike | None = None, count: int | None = None,
             split: str = "val") -> list[tuple[str, torch.Tensor]]:
    """The validation set at the test grid: the first ``count`` BSDS500 ``split`` images in name order,
    turned landscape and centre-cropped to :data:`TEST_GRID` (256x384, the grid of Kodak ÷2), as
    [(stem, image (3, 256, 384))]. Choices are made here; Kodak is read only by the final evaluation.
    An image smaller than the grid is an :class:`ImageError` naming it."""
    folder = data_root(root, need=f"bsds500/{split}") / "bsds500" / split
    out = []
    for f in image_files(folder)[:count]:
        try:
            out.append((f.stem, center_crop(to_landscape(load_image(f)), TEST_GRID)))
        except ImageError as err:
            raise ImageError(f"{f}: {err}") from None
    return out


def folder_images(folder: str | os.PathLike, count: int | None = None,
                  crop: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """The first ``count`` images of a folder in name order as [(stem, image (3, H, W))], each centre-cropped
    to crop x crop when ``crop`` is given (a validation set, e.g. BSDS500 ``val``)."""
    files = image_files(folder)[:count]
    return [(f.stem, center_crop(load_image(f), crop) if crop else load_image(f)) for f in files]


class FolderCrops:
    """Random crops with horizontal flips from every image under a folder (a training source).

    Call as ``data(batch_size, generator) -> (B, 3, h, w)``, the ``DataSource`` protocol of
    :func:`jscgc.train.train`. Images are decoded once and kept in memory as uint8 (BSDS500: 500
    images, ~230 MB); images smaller than the crop are an error at construction, naming the file.
    A landscape crop (w > h) is cut from every image turned landscape (:func:`to_landscape`), so portrait
    photographs give it too; a square crop is cut from the images as they are.

    Args:
        folder: image folder (searched recursively), e.g. ``data_root() / "bsds500"``.
        crop: crop size in pixels, square (an int) or (h, w) with h <= w.
        transform: optional function applied to each batch (e.g. a latent extractor).
    """

    def __init__(self, folder: str | os.PathLike, crop: int | tuple[int, int],
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, _decoded=None):
        h, w = (crop, crop) if isinstance(crop, int) else tuple(crop)
        if min(h, w) < 1 or h > w:
            raise ValueError(f"crop: expected a positive size in pixels, square or (h, w) with h <= w, got {crop}")
        self.size = (h, w)
        self.transform = transform
        self.folder = Path(folder)
        if _decoded is None:
            files = image_files(folder)
            _decoded = (files, [(load_image(f) * 255).round().to(torch.uint8) for f in files])
        self.files, self._decoded = _decoded
        turn = to_landscape if w > h else (lambda img: img)
        self.images = [turn(img) for img in self._decoded]
        for f, img in zip(self.files, self.images):
            if img.shape[1] < h or img.shape[2] < w:
                raise ImageError(f"image {f}: {img.shape[1]}x{img.shape[2]} is smaller than the crop {h}x{w}")

    def at(self, crop: int | tuple[int, int]) -> "FolderCrops":
        """The same images (decoded once) cropped to another size."""
        return FolderCrops(self.folder, crop, self.transform, _decoded=(self.files, self._decoded))

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        h, w = self.size
        idx = torch.randint(len(self.images), (batch_size,), generator=generator)
        out = torch.empty(batch_size, 3, h, w, dtype=torch.uint8)
        flips = torch.rand(batch_size, generator=generator) < 0.5
        for k, i in enumerate(idx.tolist()):
            img = self.images[i]
            top = int(torch.randint(img.shape[1] - h + 1, (1,), generator=generator))
            left = int(torch.randint(img.shape[2] - w + 1, (1,), generator=generator))
            patch = img[:, top:top + h, left:left + w]
            out[k] = patch.flip(2) if flips[k] else patch
        batch = out.float() / 255.0
        return self.transform(batch) if self.transform is not None else batch
