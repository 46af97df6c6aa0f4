"""Encoder of one HQA layer: a small convolutional network that halves H and W."""

from __future__ import annotations

import torch.nn as nn

from torch import Tensor

__all__ = ["Encoder"]


class Encoder(nn.Module):
    """Convolutional encoder of one HQA layer (paper Appendix C.1).

    ``Conv3x3(in, hidden/2, stride 2) -> Mish -> [Conv3x3(., hidden) -> Mish] x
    (num_layers - 2) -> Conv1x1(hidden, D)``; the first convolution has stride 1
    when ``downsample`` is false, and the first ``downsample_steps`` have stride 2
    (the flat VQ-VAE baselines halve several times). Dropout (training only)
    follows every hidden activation.

    Args:
        in_channels: input channels.
        out_channels: code dimension D.
        hidden: hidden units.
        num_layers: number of convolutions (>= 2).
        downsample: halve H and W with the first convolution(s).
        downsample_steps: how many 3x3 convolutions have stride 2 (<=
            ``num_layers - 1``) when ``downsample`` is set.
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
        downsample_steps: int = 1,
    ) -> None:
        super().__init__()
        if downsample and not 1 <= downsample_steps <= num_layers - 1:
            raise ValueError(
                f"downsample_steps must be in [1, {num_layers - 1}], "
                f"got {downsample_steps}"
            )
        halvings = downsample_steps if downsample else 0
        width = max(hidden // 2, 1) if num_layers > 2 else hidden
        blocks: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, stride=2 if halvings else 1, padding=1),
            nn.Mish(),
        ]
        for i in range(1, num_layers - 1):
            stride = 2 if i < halvings else 1
            blocks += [
                nn.Dropout(dropout),
                nn.Conv2d(width, hidden, 3, stride=stride, padding=1),
                nn.Mish(),
            ]
            width = hidden
        blocks += [nn.Dropout(dropout), nn.Conv2d(width, out_channels, 1)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
