"""The frozen stack's argmin codes of the training images, computed once.

Every layer's MMSE decoder trains on the code maps that argmin encoding
transmits (what :meth:`~compressai_hqa.HQA.quantize` of the stack truncated at
that layer gives). :func:`code_maps` computes them for all layers in one pass up
the stack; :func:`load_codes` caches them in a file keyed by digests of the
stack and of the images.
"""

from __future__ import annotations

import hashlib

from pathlib import Path

import torch

from torch import Tensor

from compressai_hqa.files import atomic_save, load_torch_file
from compressai_hqa.models.mmse import codes_digest
from compressai_hqa.models.stack import HQAStack

__all__ = ["CODES_FORMAT", "code_maps", "images_digest", "load_codes"]

#: ``"format"`` of a codes cache file.
CODES_FORMAT = "compressai_hqa.mmse.codes/1"


@torch.no_grad()
def code_maps(
    stack: HQAStack, images: Tensor, batch_size: int = 1000
) -> dict[int, Tensor]:
    """The argmin code maps of every layer of ``stack`` for ``images``.

    Args:
        stack: the trained stack (used in eval mode).
        images: (N, C, H, W) in [0, 1], H and W multiples of the stack's
            downsampling.
        batch_size: images per forward pass.

    Returns:
        layer (1-based) -> (N, h_l, w_l) code indices, ``uint8`` for codebooks
        of at most 256 codes, else ``int16``, on the CPU.
    """
    was_training = stack.training
    stack.eval()
    parts: dict[int, list[Tensor]] = {i + 1: [] for i in range(stack.num_layers)}
    try:
        for start in range(0, len(images), batch_size):
            h = images[start : start + batch_size].to(stack.device, torch.float32)
            for i, layer in enumerate(stack.layers):
                h = layer.encode(h)
                parts[i + 1].append(layer.quantize(h).cpu())
    finally:
        stack.train(was_training)
    out = {}
    for layer, chunks in parts.items():
        k = stack.config.layers[layer - 1].codebook_size
        out[layer] = torch.cat(chunks).to(torch.uint8 if k <= 256 else torch.int16)
    return out


def images_digest(images: Tensor) -> str:
    """SHA-256 (hex) of the images' float32 values and shape."""
    data = images.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.sha256(str(tuple(data.shape)).encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def load_codes(stack: HQAStack, images: Tensor, path: str | Path) -> dict[int, Tensor]:
    """:func:`code_maps`, read from the cache ``path`` when it was written for
    this stack and these images, else computed and written there (atomically)."""
    path = Path(path)
    key = {
        "stack": codes_digest(stack, stack.num_layers),
        "images": images_digest(images),
    }
    if path.is_file():
        cached = load_torch_file(path)
        if (
            isinstance(cached, dict)
            and cached.get("format") == CODES_FORMAT
            and all(cached.get(k) == v for k, v in key.items())
        ):
            return {int(k): v for k, v in cached["codes"].items()}
    codes = code_maps(stack, images)
    atomic_save(
        {
            "format": CODES_FORMAT,
            **key,
            "codes": {str(k): v for k, v in codes.items()},
        },
        path,
    )
    return codes
