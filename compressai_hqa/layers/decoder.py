"""Decoder of one HQA layer: a small convolutional network that doubles H and W."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn

from torch import Tensor

__all__ = ["Decoder"]


class Decoder(nn.Module):
    """Convolutional decoder of one HQA layer (paper Appendix C.1).

    ``Conv3x3(D, hidden) -> Mish -> [Conv3x3(hidden, hidden, dilation d) -> Mish]
    x (num_layers - 3) -> nearest-neighbour x2 upsampling -> Conv3x3(hidden,
    hidden/2) -> Mish -> Conv3x3(hidden/2, out)``, ending with a sigmoid for the
    bottom (pixel) layer. With ``upsample_steps`` > 1 (the flat VQ-VAE
    baselines), the last ``upsample_steps - 1`` intermediate convolutions are each
    preceded by a x2 upsampling too. Dropout (training only) follows every hidden
    activation.

    Args:
        in_channels: code dimension D.
        out_channels: channels of the reconstructed input.
        hidden: hidden units.
        num_layers: number of convolutions (>= 3).
        upsample: double H and W (nearest neighbour) before the last two convs.
        dilations: dilation of each intermediate convolution (``num_layers - 3``
            entries); empty means 1 everywhere.
        dropout: dropout probability after each hidden activation.
        sigmoid: squash the output to [0, 1] (bottom layer).
        upsample_steps: how many times to double H and W when ``upsample`` is
            set (<= ``num_layers - 2``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        num_layers: int = 3,
        upsample: bool = True,
        dilations: Sequence[int] = (),
        dropout: float = 0.0,
        sigmoid: bool = False,
        upsample_steps: int = 1,
    ) -> None:
        super().__init__()
        dilations = tuple(dilations) or (1,) * (num_layers - 3)
        if len(dilations) != num_layers - 3:
            raise ValueError(f"need {num_layers - 3} dilations, got {len(dilations)}")
        if upsample and not 1 <= upsample_steps <= num_layers - 2:
            raise ValueError(
                f"upsample_steps must be in [1, {num_layers - 2}], got {upsample_steps}"
            )
        early = len(dilations) - (upsample_steps - 1 if upsample else 0)
        half = max(hidden // 2, 1)
        blocks: list[nn.Module] = [
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.Mish(),
        ]
        for i, d in enumerate(dilations):
            if i >= early:
                blocks.append(nn.Upsample(scale_factor=2, mode="nearest"))
            blocks += [
                nn.Dropout(dropout),
                nn.Conv2d(hidden, hidden, 3, padding=d, dilation=d),
                nn.Mish(),
            ]
        if upsample:
            blocks.append(nn.Upsample(scale_factor=2, mode="nearest"))
        blocks += [
            nn.Dropout(dropout),
            nn.Conv2d(hidden, half, 3, padding=1),
            nn.Mish(),
            nn.Dropout(dropout),
            nn.Conv2d(half, out_channels, 3, padding=1),
        ]
        if sigmoid:
            blocks.append(nn.Sigmoid())
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
