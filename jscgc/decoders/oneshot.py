"""The MSE decoder "of the same size" as a generator: the velocity network run once.

``OneShotDecoder(net)(received, shape)`` evaluates ``net(0, t = 1, ŷ)`` on an all-zero input and
reads the output as x̂. Trained with MSE (``MSEReconstruction``) it is the reconstruction-paradigm
receiver with exactly the generator's architecture and parameter count, which is the comparison
docs/recipe_search.md asks for.
"""
from __future__ import annotations

import torch
from torch import nn

from jscgc.flow import run_once
from jscgc.types import Received

__all__ = ["OneShotDecoder"]


class OneShotDecoder(nn.Module):
    """Received -> x̂ (``shape``) with one pass of a velocity-shaped network ``net(x, t, ŷ)``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, received: Received, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        if shape is None:
            raise ValueError("OneShotDecoder: the output shape (B, *S) is needed")
        return run_once(self.net, received, shape)

    def config(self) -> dict:
        inner = self.net.config() if callable(getattr(self.net, "config", None)) else type(self.net).__name__
        return {"class": "OneShotDecoder", "net": inner}
