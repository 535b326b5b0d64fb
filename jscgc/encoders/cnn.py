"""The CNN encoder of Deep JSCC (Bourtsoulatze, Burth Kurka & Gündüz, IEEE TCCN 2019).

Five 5x5 convolutions with PReLU: the first ``n_down`` have stride 2 (the paper: 2), the rest
stride 1; the last maps to 2·k channels, read as k complex symbols per output position, then power
normalisation. x (B, C, H, W) -> symbols (B, (H/s)(W/s)·k, 2) with s = 2^n_down (:attr:`stride`).
At CBR 1/384 a stride-4 position would carry 1/8 symbol, so the image presets use n_down = 4
(s = 16, 2 symbols per position); :mod:`jscgc.cbr` does that arithmetic.
"""
from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from jscgc.channels import power_normalize
from jscgc.registry import register

__all__ = ["CNNEncoder"]


@register
class CNNEncoder(ModelMixin, ConfigMixin):
    """Deep JSCC encoder: (B, in_channels, H, W) -> (B, n, 2) with unit average power.

    Args:
        in_channels: 3 for pixels (inputs in [0, 1]; centred to [-0.5, 0.5] inside).
        symbols_per_token: complex symbols per output position.
        hidden: widths of the first four convolutions (paper: 16, 32, 32, 32).
        n_down: how many of the five convolutions have stride 2.
        power: power constraint (see ``power_normalize``).
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, symbols_per_token: int = 2,
                 hidden: tuple[int, ...] = (16, 32, 32, 32), n_down: int = 2, power: str = "sample"):
        super().__init__()
        if len(hidden) != 4 or not 0 <= n_down <= 5:
            raise ValueError(f"CNNEncoder: hidden needs 4 widths and n_down in 0..5, got {hidden}, {n_down}")
        widths = [in_channels, *hidden, 2 * symbols_per_token]
        layers = []
        for i in range(5):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 5, stride=2 if i < n_down else 1, padding=2),
                       nn.PReLU(widths[i + 1])]
        self.net = nn.Sequential(*layers)

    @property
    def stride(self) -> int:
        return 2 ** self.config.n_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if x.dim() != 4 or h % self.stride or w % self.stride:
            raise ValueError(f"CNNEncoder: input (B, C, H, W) with H, W multiples of {self.stride}, "
                             f"got {tuple(x.shape)}")
        z = self.net(x - 0.5).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2)
        return power_normalize(z, over=self.config.power)
