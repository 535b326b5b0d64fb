"""Metrics computed by networks whose weights are optional (LPIPS, DISTS, DINO, rFID's Inception), and
the loaders of what every metric needs (:data:`LOADERS`). Weights are read from the weights root
(``JSCGC_WEIGHTS``, :func:`jscgc.latents.weights_root`); a missing folder, file or library is a
:class:`~jscgc.metrics.common.MetricUnavailable` that says which, never a made-up number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from jscgc.metrics.common import MemoisedFeatures, MetricUnavailable, check_pair

__all__ = ["perceptual_distance", "dino_similarity", "FEATURE_CACHE_BYTES", "LOADERS"]


def perceptual_distance(ref: torch.Tensor, out: torch.Tensor, model, features: Callable,
                        reference: Callable) -> torch.Tensor:
    """A learned distance (:class:`jscgc.perceptual.LPIPS` or :class:`~jscgc.perceptual.DISTS`) per image
    pair: (B,). ``features(x)`` maps [0, 1] images to the model's features in its own input convention
    (LPIPS: x ↦ 2x − 1 first; DISTS: as is); ``reference`` is the same function memoised, so a reference's
    features are computed once per image (:class:`~jscgc.metrics.common.MemoisedFeatures`)."""
    check_pair(ref, out)
    with torch.inference_mode():
        return model.compare(reference(ref), features(out)).float()


def dino_similarity(ref: torch.Tensor, out: torch.Tensor, model) -> torch.Tensor:
    """Cosine similarity of the CLS token of a ViT (ImageNet-normalised 224x224 input): (B,)."""
    check_pair(ref, out)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    size = getattr(getattr(model, "config", None), "image_size", 224)
    prep = lambda x: (F.interpolate(x, size=(size, size), mode="bicubic", antialias=True)  # noqa: E731
                      .clamp(0, 1) - mean.to(x)) / std.to(x)
    with torch.no_grad():
        a = model(pixel_values=prep(ref)).last_hidden_state[:, 0]
        b = model(pixel_values=prep(out)).last_hidden_state[:, 0]
    return F.cosine_similarity(a, b, dim=1)


def _weights(sub: str) -> Path:
    """The folder ``sub`` of the weights root; MetricUnavailable when it is not there."""
    from jscgc.latents import weights_root

    root = weights_root()
    if root is None or not (root / sub).exists():
        raise MetricUnavailable(f"weights '{sub}' not found (set JSCGC_WEIGHTS to a folder holding {sub})")
    return root / sub


#: bytes of reference features a learned metric keeps (24 references of 384x256 need about 1.1 GB for VGG)
FEATURE_CACHE_BYTES = 2 << 30


def _perceptual(name: str, extractor) -> dict:
    """The loaded model and a memo of reference features for ``lpips_<net>`` or ``dists``."""
    from jscgc import perceptual

    try:
        if name == "dists":
            model, signed = perceptual.load_dists(_weights("dists").parent), False
        else:
            model, signed = perceptual.load_lpips(name.removeprefix("lpips_"), _weights("lpips")), True
    except FileNotFoundError as err:
        raise MetricUnavailable(f"{name}: {err}") from None

    def features(images):
        with torch.inference_mode():
            return model.features(images * 2 - 1 if signed else images)

    return {"model": model, "features": features,
            "reference": MemoisedFeatures(features, max_bytes=FEATURE_CACHE_BYTES)}


def _dino_model():
    """DINO ViT (e.g. facebook/dino-vitb16) from ``<weights>/dino`` through transformers."""
    folder = _weights("dino")
    try:
        from transformers import AutoModel
    except Exception:
        raise MetricUnavailable("dino needs the transformers package") from None
    return AutoModel.from_pretrained(folder).eval()


def _inception_features():
    """Inception-v3 pool features via torch-fidelity with ``<weights>/fid/pt_inception-2015-12-05-6726825d.pth``."""
    folder = _weights("fid")
    path = folder / "pt_inception-2015-12-05-6726825d.pth"
    if not path.is_file():
        raise MetricUnavailable(f"rfid: {path} is missing")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except Exception:
        raise MetricUnavailable("rfid needs the torch-fidelity package") from None
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    net.eval()

    def features(x):
        with torch.no_grad():
            return net((x * 255).round().to(torch.uint8))[0].double().cpu().numpy()

    return features


def _need_extractor(name: str, extractor) -> dict:
    """The TAEF2 extractor given to :func:`~jscgc.metrics.table.available_metrics` (``latent_fd``)."""
    if extractor is None:
        raise MetricUnavailable(f"{name} needs the TAEF2 extractor")
    return {"extractor": extractor}


#: What a metric may need -> a loader (metric name, extractor) -> keyword arguments for its function;
#: a loader raises MetricUnavailable with the reason. "lpips", "dists", "dino", "fid": folders under the weights
#: root (DISTS also reads VGG16 from "lpips").
LOADERS: dict[str, Callable[[str, Any], dict]] = {
    "": lambda name, extractor: {},
    "extractor": _need_extractor,
    "lpips": _perceptual,
    "dists": _perceptual,
    "dino": lambda name, extractor: {"model": _dino_model()},
    "fid": lambda name, extractor: {"features": _inception_features()},
}
