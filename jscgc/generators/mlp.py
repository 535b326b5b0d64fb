"""Toy conditional velocity model: an MLP on x_t with ŷ added into every hidden layer.

The received signal is mapped once to a feature vector, and a separate linear projection of
it is *added* to the hidden state before each layer — the same pattern by which the paper's
CA-Adapter adds its features into chosen Z-Image layers (Sec. III-B).
"""
from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from jscgc.nn import mlp, time_embedding
from jscgc.registry import register
from jscgc.types import Received


def condition_features(received: Received) -> torch.Tensor:
    """Flatten ŷ and append SNR/10: Received((B, n, 2), (B,)) -> (B, 2n + 1)."""
    y = received.symbols.flatten(1)
    return torch.cat([y, received.snr_db.to(y.dtype)[:, None] / 10.0], dim=1)


@register
class MLPVelocity(ModelMixin, ConfigMixin):
    """v(x_t, t, ŷ): x_t (B, m), t (B,), Received -> (B, m).

    Args:
        dim: data dimension m.
        n_symbols: complex symbols n in ŷ.
        hidden, depth: width and number of residual hidden layers.
        time_dim: size of the sinusoidal time embedding.
        cond_depth: hidden layers of the network that embeds ŷ before it is injected; the
            embedding also enters the input layer next to x_t and t.
    """

    @register_to_config
    def __init__(self, dim: int, n_symbols: int, hidden: int = 256, depth: int = 3,
                 time_dim: int = 32, cond_depth: int = 2):
        super().__init__()
        self.inp = nn.Linear(dim + time_dim + hidden, hidden)
        self.cond = mlp(2 * n_symbols + 1, hidden, hidden, cond_depth)
        self.inject = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, dim)
        self.act = nn.SiLU()

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, received: Received) -> torch.Tensor:
        temb = time_embedding(t, self.config.time_dim).to(x_t.dtype)
        c = self.act(self.cond(condition_features(received)))
        h = self.inp(torch.cat([x_t, temb, c], dim=1))
        for layer, inject in zip(self.layers, self.inject):
            h = h + layer(self.act(h + inject(c)))
        return self.out(self.act(h))
