"""Encoder of one HQA layer: a small convolutional network that halves H and W."""

from __future__ import annotations

import torch.nn as nn

from torch import Tensor

__all__ = ["Encoder"]


class Encoder(nn.Module):
    """Convolutional encoder of one HQA layer (paper Appendix C.1).

    ``Conv3x3(in, hidden/2, stride 2) -> Mish -> [Conv3x3(., hidden) -> Mish] x
    (num_layers - 2) -> Conv1x1(hidden, D)``; the first convolution has stride 1
    when ``downsample`` is false. Dropout (training only) follows every hidden
    activation.

    Args:
        in_channels: input channels.
        out_channels: code dimension D.
        hidden: hidden units.
        num_layers: number of convolutions (>= 2).
        downsample: halve H and W with the first convolution.
        dropout: dropout probability after each hidden activation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        num_layers: int = 3,
        downsample: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        width = max(hidden // 2, 1) if num_layers > 2 else hidden
        blocks: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, stride=stride, padding=1),
            nn.Mish(),
        ]
        for _ in range(num_layers - 2):
            blocks += [
                nn.Dropout(dropout),
                nn.Conv2d(width, hidden, 3, padding=1),
                nn.Mish(),
            ]
            width = hidden
        blocks += [nn.Dropout(dropout), nn.Conv2d(width, out_channels, 1)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
