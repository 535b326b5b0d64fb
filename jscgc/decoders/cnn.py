"""The CNN decoder of Deep JSCC (Bourtsoulatze et al. 2019): the encoder mirrored.

Five 5x5 transposed convolutions with PReLU (the last with a sigmoid): the last ``n_up`` upsample
by 2. Received symbols (B, n, 2) are laid back on the encoder's (H/s, W/s) grid, so the decoder
needs the output size: ``decoder(received, shape=(B, C, H, W))`` (or the config's ``size``); the SNR (dB / 10) enters as one more
input channel, which lets one decoder serve an SNR range.
"""
from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from jscgc.registry import register
from jscgc.types import Received

__all__ = ["CNNDecoder"]


@register
class CNNDecoder(ModelMixin, ConfigMixin):
    """Received ((B, n, 2), SNR) -> image (B, out_channels, H, W) in [0, 1].

    Args:
        out_channels: 3 for pixels.
        symbols_per_token, n_up: as the encoder's symbols_per_token and n_down.
        hidden: widths of the four inner layers (paper: 32, 32, 32, 16).
        size: default output (H, W) when ``forward`` is not given one.
        sigmoid: squash the output to [0, 1] (pixels); False for latent outputs.
    """

    @register_to_config
    def __init__(self, out_channels: int = 3, symbols_per_token: int = 2,
                 hidden: tuple[int, ...] = (32, 32, 32, 16), n_up: int = 2,
                 size: tuple[int, int] | None = None, sigmoid: bool = True):
        super().__init__()
        widths = [2 * symbols_per_token + 1, *hidden, out_channels]
        layers = []
        for i in range(5):
            up = i >= 5 - n_up
            layers.append(nn.ConvTranspose2d(widths[i], widths[i + 1], 5, stride=2 if up else 1,
                                             padding=2, output_padding=1 if up else 0))
            if i < 4:
                layers.append(nn.PReLU(widths[i + 1]))
        self.net = nn.Sequential(*layers)

    def forward(self, received: Received, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        size = tuple(shape[-2:]) if shape is not None else self.config.size
        if size is None:
            raise ValueError("CNNDecoder: the output shape (B, C, H, W) is needed (argument or config 'size')")
        s = 2 ** self.config.n_up
        h, w = size[0] // s, size[1] // s
        y = received.symbols
        b, k = y.shape[0], self.config.symbols_per_token
        if y.shape[1] != h * w * k:
            raise ValueError(f"CNNDecoder: {y.shape[1]} symbols do not fill a {h}x{w} grid with {k} per "
                             f"position (output size {size})")
        grid = y.reshape(b, h, w, 2 * k).permute(0, 3, 1, 2)
        snr = (received.snr_db.to(y.dtype) / 10.0).view(b, 1, 1, 1).expand(b, 1, h, w)
        out = self.net(torch.cat([grid, snr], dim=1))
        return torch.sigmoid(out) if self.config.sigmoid else out
