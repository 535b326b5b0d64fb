"""The one table of metrics, :data:`METRICS` (name -> :class:`Metric`: its function, input range, kind,
what it needs, orientation and figure label), and the functions that resolve and evaluate them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import torch

from jscgc.metrics.common import MetricUnavailable
from jscgc.metrics.learned import LOADERS, dino_similarity, perceptual_distance
from jscgc.metrics.pixel import colour_distance, lowpass_psnr, ms_ssim, psnr
from jscgc.metrics.sets import SetMeasure, latent_features, patch_dct_features
from jscgc.metrics.spectral import detail_match, hf_ratio, power_spectrum_distance

__all__ = ["Metric", "METRICS", "available_metrics", "evaluate_images", "evaluate_sets"]


def _rows(images: torch.Tensor, features: Callable) -> np.ndarray:
    """A set metric's feature rows computed by a loaded network (rFID's Inception)."""
    return features(images)


@dataclass(frozen=True)
class Metric:
    """One metric, everything a caller needs to know about it.

    function: ``kind == "image"``: (ref, out, **loaded) -> (B,); ``"set"``: the features,
        (image (1, 3, H, W), **loaded) -> rows (N, d) or (N, k, d), bound into a :class:`SetMeasure`;
        ``loaded`` being what ``needs`` loads (nothing for "").
    input_range: the range every image must be in (all metrics: [0, 1]).
    kind: "image" (per image pair) or "set" (over two lists of (1, 3, H, W) images).
    needs: "" (nothing), "extractor" (the TAEF2 latent extractor passed to :func:`available_metrics`), or
        the weights folder it loads from the weights root: "lpips", "dists", "dino" or "fid".
    better: "higher", "lower" or "one" (closer to 1 is better). label: the title in figures.
    """
    name: str
    function: Callable
    kind: str
    needs: str
    better: str
    label: str
    input_range: tuple[float, float] = (0.0, 1.0)

    def bind(self, extractor=None) -> Callable:
        """The ready callable; MetricUnavailable (with the reason) when what it needs is missing."""
        loaded = LOADERS[self.needs](self.name, extractor)
        fn = partial(self.function, **loaded) if loaded else self.function
        return SetMeasure(fn) if self.kind == "set" else fn

    def describe(self) -> dict:
        """A JSON-ready description (experiments write it to config.json)."""
        fn, args = self.function, ""
        if isinstance(fn, partial):
            fn, args = fn.func, ", ".join(f"{k}={v!r}" for k, v in fn.keywords.items())
        text = f"{fn.__module__}.{fn.__qualname__}({args})"
        if self.kind == "set":
            text = f"Fréchet distance of Gaussians fitted to the rows of {text}, summed over blocks"
        return {"function": text, "input_range": list(self.input_range),
                "kind": self.kind, "needs": self.needs or "nothing", "better": self.better, "label": self.label}


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("psnr", psnr, "image", "", "higher", "PSNR (dB)"),
    Metric("ms_ssim", ms_ssim, "image", "", "higher", "MS-SSIM"),
    Metric("psnr_lp8", partial(lowpass_psnr, factor=8), "image", "", "higher", "low-pass PSNR ÷8 (dB)"),
    Metric("psnr_lp16", partial(lowpass_psnr, factor=16), "image", "", "higher", "low-pass PSNR ÷16 (dB)"),
    Metric("colour_dist", colour_distance, "image", "", "lower", "colour-statistics distance"),
    Metric("psd_dist", power_spectrum_distance, "image", "", "lower", "power-spectrum distance"),
    Metric("hf_ratio", hf_ratio, "image", "", "one", "high-frequency energy ratio"),
    Metric("detail_match", detail_match, "image", "", "higher", "local detail match"),
    Metric("lpips_alex", perceptual_distance, "image", "lpips", "lower", "LPIPS (AlexNet)"),
    Metric("lpips_vgg", perceptual_distance, "image", "lpips", "lower", "LPIPS (VGG16)"),
    Metric("lpips_squeeze", perceptual_distance, "image", "lpips", "lower", "LPIPS (SqueezeNet)"),
    Metric("dists", perceptual_distance, "image", "dists", "lower", "DISTS"),
    Metric("dino", dino_similarity, "image", "dino", "higher", "DINO score"),
    Metric("latent_fd", latent_features, "set", "extractor", "lower", "TAEF2-feature Fréchet distance (proxy, not FID)"),
    Metric("rfid", _rows, "set", "fid", "lower", "rFID"),
    Metric("patch_fd", patch_dct_features, "set", "", "lower", "8×8 DCT-patch Fréchet distance"),
]}


def available_metrics(names: list[str] | None = None, extractor=None) -> tuple[dict, dict[str, str]]:
    """Resolve metrics: ({name: callable}, {name: reason unavailable}).

    ``extractor`` (a TAEF2) enables ``latent_fd``; LPIPS, DINO and rFID load their weights here."""
    names = list(METRICS) if names is None else list(names)
    for name in names:
        if name not in METRICS:
            raise ValueError(f"metrics: unknown metric {name!r}; expected some of {sorted(METRICS)}")
    ready, missing = {}, {}
    for name in names:
        try:
            ready[name] = METRICS[name].bind(extractor)
        except MetricUnavailable as err:
            missing[name] = str(err)
    return ready, missing


def evaluate_images(ref: torch.Tensor, out: torch.Tensor, ready: dict) -> dict[str, list[float]]:
    """Every ready per-image metric on (B, 3, H, W) pairs: {name: [B values]}."""
    with torch.no_grad():
        return {name: fn(ref, out).tolist() for name, fn in ready.items()
                if METRICS[name].kind == "image"}


def evaluate_sets(refs: list[torch.Tensor], outs: list[torch.Tensor], ready: dict) -> dict[str, float]:
    """Every ready set metric over lists of (1, 3, H, W) images (sizes may differ between items)."""
    with torch.no_grad():
        return {name: float(fn(refs, outs)) for name, fn in ready.items() if METRICS[name].kind == "set"}
