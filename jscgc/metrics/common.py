"""What every metric module of :mod:`jscgc.metrics` shares: the error of a metric that cannot be computed
here, the check of an image pair, and features memoised by the content of the images.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Callable

import torch

__all__ = ["MetricUnavailable", "check_pair", "MemoisedFeatures"]


class MetricUnavailable(RuntimeError):
    """A metric's weights or library are missing; the message says which."""


def check_pair(ref: torch.Tensor, out: torch.Tensor) -> None:
    """Both images (B, 3, H, W) of the same shape, else one ValueError that gives both shapes."""
    if ref.shape != out.shape or ref.dim() != 4 or ref.shape[1] != 3:
        raise ValueError(f"metrics: expected two (B, 3, H, W) images in [0, 1] of the same shape, got "
                         f"{tuple(ref.shape)} and {tuple(out.shape)}")


class MemoisedFeatures:
    """``features(images)`` remembered by the images' content (shape and bytes): the last ``size`` calls,
    and at most ``max_bytes`` of tensors or arrays (None: no byte limit), least recently used dropped first.

    A set metric is called once per receiver and SNR with the *same* references; without this the
    TAEF2 encoder re-encoded all 24 Kodak references each time (28 times in the `small` benchmark). A
    learned metric (LPIPS, DISTS) compares one reference with every receiver's output the same way.
    Keyed by content, not identity, so a copy of a reference hits and a changed tensor never does."""

    def __init__(self, features: Callable[[torch.Tensor], Any], size: int = 256, max_bytes: int | None = None):
        self.features, self.size, self.max_bytes, self.cache = features, size, max_bytes, OrderedDict()

    @staticmethod
    def nbytes(value) -> int:
        """Bytes held by a tensor, an array, or a list/tuple of them."""
        if isinstance(value, (list, tuple)):
            return sum(MemoisedFeatures.nbytes(v) for v in value)
        if isinstance(value, torch.Tensor):
            return value.element_size() * value.nelement()
        return int(getattr(value, "nbytes", 0))

    def __call__(self, images: torch.Tensor):
        data = images.detach().cpu().contiguous()
        key = (tuple(data.shape), str(data.dtype), hashlib.sha1(data.numpy().tobytes()).hexdigest())
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        value = self.cache[key] = self.features(images)
        budget = float("inf") if self.max_bytes is None else self.max_bytes
        held = 0 if self.max_bytes is None else sum(self.nbytes(v) for v in self.cache.values())
        while len(self.cache) > 1 and (len(self.cache) > self.size or held > budget):
            _, dropped = self.cache.popitem(last=False)
            held -= 0 if self.max_bytes is None else self.nbytes(dropped)
        return value
