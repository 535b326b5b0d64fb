"""Toy encoder: an MLP from R^m to n complex symbols, then power normalisation."""
from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

from jscgc.channels import power_normalize
from jscgc.nn import mlp
from jscgc.registry import register


@register
class MLPEncoder(ModelMixin, ConfigMixin):
    """x (B, m) -> symbols (B, n, 2) with average power 1 per complex symbol.

    Args:
        in_dim: source dimension m.
        n_symbols: complex channel uses n (2n real numbers).
        hidden, depth: MLP width and number of hidden layers (depth 0: a linear encoder).
        power: ``"sample"`` or ``"batch"`` power constraint (see ``power_normalize``).
    """

    @register_to_config
    def __init__(self, in_dim: int, n_symbols: int, hidden: int = 128, depth: int = 2,
                 power: str = "sample"):
        super().__init__()
        self.net = mlp(in_dim, 2 * n_symbols, hidden, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x.flatten(1)).view(x.shape[0], self.config.n_symbols, 2)
        return power_normalize(z, over=self.config.power)
