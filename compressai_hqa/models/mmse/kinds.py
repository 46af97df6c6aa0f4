"""The kinds of MMSE decoder: pixels from one layer's code map (B, h, w).

See :mod:`compressai_hqa.models.mmse` for what each is for.
"""

from __future__ import annotations

import copy

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.models.stack import HQAStack

__all__ = ["KINDS", "CodeNet", "CodeTable", "MMSESpec", "PathDecoder"]

#: The kinds of MMSE decoder (see :mod:`compressai_hqa.models.mmse`).
KINDS = ("path", "net", "table")


@dataclass(frozen=True)
class MMSESpec:
    """What the MMSE decoder of one layer is.

    Args:
        kind: one of :data:`KINDS`.
        width: hidden channels of the first convolution of a ``"net"`` (halved
            at each upsampling, down to 16); unused by the other kinds.
    """

    kind: str = "path"
    width: int = 128

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")


def _crop(images: Tensor, size: Sequence[int] | None) -> Tensor:
    return images if size is None else images[..., : size[0], : size[1]]


def _check_indices(indices: Tensor, codebook_size: int) -> None:
    if indices.dim() != 3:
        raise ValueError(f"indices must be (B, h, w), got {tuple(indices.shape)}")
    if indices.is_floating_point() or indices.is_complex():
        raise TypeError(f"indices must be integers, got {indices.dtype}")
    if indices.numel() and not 0 <= int(indices.min()) <= int(indices.max()) < (
        codebook_size
    ):
        raise ValueError(f"code indices must be in [0, {codebook_size})")


class _Affine(nn.Module):
    """``x * scale + shift`` per channel: a frozen normaliser's inverse."""

    def __init__(self, scale: Tensor, shift: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().float().view(1, -1, 1, 1))
        self.register_buffer("shift", shift.detach().float().view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


class PathDecoder(nn.Module):
    """The decoding path of layer ``layer`` of ``stack``, continuous.

    ``embedding -> decoder l -> unnormalise -> decoder l-1 -> ... -> decoder 1``:
    argmin decoding without the re-quantisation between layers, with its own
    copy of the weights (initialised from ``stack``'s).

    Args:
        stack: the trained stack (its weights are copied, not shared).
        layer: the layer whose code map is decoded (1-based).

    Raises:
        ValueError: a bad layer, or a cross-entropy (HAMs) layer on the path.
    """

    def __init__(self, stack: HQAStack, layer: int) -> None:
        super().__init__()
        if not 1 <= layer <= stack.num_layers:
            raise ValueError(f"layer must be in [1, {stack.num_layers}], got {layer}")
        layers = list(stack.layers[:layer])
        if any(lay.target != "mse" for lay in layers):
            raise ValueError("a path decoder needs layers that reconstruct z_e (mse)")
        self.codebook_size = layers[-1].codebook_size
        self.embedding = nn.Parameter(layers[-1].codebook.detach().clone().float())
        # index 0 is layer 1 (pixels); forward runs them top-down
        self.decoders = nn.ModuleList(copy.deepcopy(lay.decoder) for lay in layers)
        self.unnormalize = nn.ModuleList(
            _Affine(lay.normalizer.std, lay.normalizer.mean)
            if lay.normalizer is not None
            else nn.Identity()
            for lay in layers
        )
        for p in self.parameters():  # the stack's may be frozen
            p.requires_grad_(True)

    def forward(self, indices: Tensor, size: Sequence[int] | None = None) -> Tensor:
        """Images (B, C, H, W) from code indices (B, h, w), cropped to ``size``."""
        _check_indices(indices, self.codebook_size)
        h = F.embedding(indices.long(), self.embedding).permute(0, 3, 1, 2)
        for decoder, unnormalize in zip(
            reversed(self.decoders), reversed(self.unnormalize), strict=True
        ):
            h = unnormalize(decoder(h))
        return _crop(h, size)


class CodeNet(nn.Module):
    """A fresh decoder of code maps: embedding, then conv + x2 upsampling blocks.

    ``Embedding(K, D) -> Conv3x3(D, width) -> Mish -> [x2 nearest -> Conv3x3 ->
    Mish] x log2(factor) -> Conv3x3(., C)``; the widths halve at each
    upsampling, down to 16. The output is linear in training (a sigmoid
    saturates on the blank background and stalls training from scratch) and
    clamped to [0, 1] in eval mode.

    Args:
        codebook_size: number of codes K.
        out_channels: image channels C.
        factor: image pixels per code along each side (a power of two).
        width: channels of the first convolution.
        dim: embedding dimension D.
    """

    def __init__(
        self,
        codebook_size: int,
        out_channels: int,
        factor: int,
        width: int = 128,
        dim: int = 64,
    ) -> None:
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"factor must be a power of two, got {factor}")
        self.codebook_size = codebook_size
        self.embedding = nn.Embedding(codebook_size, dim)
        blocks: list[nn.Module] = [nn.Conv2d(dim, width, 3, padding=1), nn.Mish()]
        channels = width
        for _ in range(factor.bit_length() - 1):
            narrower = max(channels // 2, 16)
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(channels, narrower, 3, padding=1),
                nn.Mish(),
            ]
            channels = narrower
        blocks.append(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.net = nn.Sequential(*blocks)

    def forward(self, indices: Tensor, size: Sequence[int] | None = None) -> Tensor:
        """Images (B, C, H, W) from code indices (B, h, w), cropped to ``size``."""
        _check_indices(indices, self.codebook_size)
        h = self.embedding(indices.long()).permute(0, 3, 1, 2)
        out = self.net(h)
        return _crop(out if self.training else out.clamp(0, 1), size)


class CodeTable(nn.Module):
    """One (C, f, f) patch per code, tiled over the code map.

    Filled with the mean of the training images sharing each code (see
    :func:`compressai_hqa.training.mmse.fit_table`), it is the exact MMSE
    decoder of a 1x1 code map (the mean of a partition cell); on larger maps it
    is the patch-wise mean pooled over positions.

    Args:
        codebook_size: number of codes K.
        out_channels: image channels C.
        factor: patch side f (image pixels per code along each side).
    """

    means: Tensor

    def __init__(self, codebook_size: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.register_buffer(
            "means", torch.zeros(codebook_size, out_channels, factor, factor)
        )

    def forward(self, indices: Tensor, size: Sequence[int] | None = None) -> Tensor:
        """Images (B, C, h f, w f) from code indices (B, h, w), cropped to ``size``."""
        _check_indices(indices, self.codebook_size)
        b, h, w = indices.shape
        _, c, f, _ = self.means.shape
        patches = self.means[indices.long()]  # (B, h, w, C, f, f)
        images = patches.permute(0, 3, 1, 4, 2, 5).reshape(b, c, h * f, w * f)
        return _crop(images, size)
