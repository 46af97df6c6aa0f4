"""How well a layer's MMSE decoder does: MSE and class error against argmin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from torch import Tensor

from compressai_hqa.metrics.classifier import classification_error
from compressai_hqa.models import HQA
from compressai_hqa.models.mmse import MMSEDecoders

__all__ = ["decode_all", "decoder_mse", "evaluate_layer"]


@torch.no_grad()
def decode_all(
    decode: Callable[[Tensor], Tensor], codes: Tensor, batch_size: int = 1000
) -> Tensor:
    """``decode`` of the code maps (N, h, w) in batches, as (N, C, H, W) floats."""
    if isinstance(decode, nn.Module):
        decode.eval()
    parts = [
        decode(codes[i : i + batch_size]).float().cpu()
        for i in range(0, len(codes), batch_size)
    ]
    return torch.cat(parts)


def decoder_mse(
    decode: Callable[[Tensor], Tensor], images: Tensor, codes: Tensor
) -> float:
    """Mean squared error of ``decode(codes)`` against ``images`` (in [0, 1])."""
    decoded = decode_all(decode, codes)[..., : images.shape[-2], : images.shape[-1]]
    return torch.mean((decoded - images.float()) ** 2).item()


def evaluate_layer(
    stack: HQA,
    decoders: MMSEDecoders,
    layer: int,
    images: Tensor,
    labels: Tensor | None = None,
    classifier: nn.Module | None = None,
) -> dict[str, Any]:
    """Argmin and MMSE decoding of the argmin codes of ``images`` at ``layer``.

    Args:
        stack: the stack (at least ``layer`` layers).
        decoders: its MMSE decoders (with one for ``layer``).
        layer: the layer whose codes are decoded.
        images: (N, C, H, W) in [0, 1].
        labels, classifier: when both are given, the class error of the
            classifier on each decoding is reported too.

    Returns:
        ``{"layer", "images", "bits", "argmin": {"mse", ...}, "mmse": {...}}``,
        with ``"class_error"`` in each when labels are given.
    """
    truncated = stack.truncate(layer).eval()
    with torch.no_grad():
        codes = torch.cat(
            [
                truncated.quantize(images[i : i + 1000])
                for i in range(0, len(images), 1000)
            ]
        )
    size = images.shape[-2:]
    result: dict[str, Any] = {
        "layer": layer,
        "images": len(images),
        "bits": truncated.bits(*size),
    }
    for name, decode in (
        ("argmin", lambda c: truncated.decode(c, size=size)),
        ("mmse", lambda c: decoders(c, layer, size)),
    ):
        decoded = decode_all(decode, codes)
        entry = {"mse": torch.mean((decoded - images.float()) ** 2).item()}
        if labels is not None and classifier is not None:
            entry["class_error"] = classification_error(
                classifier, decoded.clamp(0, 1), labels
            )
        result[name] = entry
    return result
