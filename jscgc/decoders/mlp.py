"""Toy MSE decoder: an MLP from the received signal (and SNR) to x̂ (B, m)."""
from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from jscgc.generators.mlp import condition_features
from jscgc.nn import mlp
from jscgc.registry import register
from jscgc.types import Received


@register
class MLPDecoder(ModelMixin, ConfigMixin):
    """x̂ = g(ŷ, SNR): Received((B, n, 2), (B,)) -> (B, m). depth 0 is a linear decoder."""

    @register_to_config
    def __init__(self, dim: int, n_symbols: int, hidden: int = 256, depth: int = 3):
        super().__init__()
        self.net = mlp(2 * n_symbols + 1, dim, hidden, depth)

    def forward(self, received: Received, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """x̂ (B, dim); ``shape`` is accepted for the decoder interface and not needed."""
        return self.net(condition_features(received))
