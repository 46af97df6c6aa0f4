"""Code statistics of a stack: how often each code is the argmin code, and the
learnt (static) prior of every layer fitted from them."""

from __future__ import annotations

import torch

from torch import Tensor

from compressai_hqa.models import HQA

__all__ = ["count_codes", "estimate_code_priors"]


@torch.no_grad()
def count_codes(model: HQA, images: Tensor, batch_size: int = 1024) -> Tensor:
    """How often each top-layer code is the argmin code of ``images`` (K,) int64."""
    counts = torch.zeros(model.codebook_size, dtype=torch.int64)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(model.device)
        codes = model.quantize(x).reshape(-1).cpu()
        counts += torch.bincount(codes, minlength=len(counts))
    return counts


def estimate_code_priors(
    stack: HQA, images: Tensor, batch_size: int = 1024
) -> dict[int, tuple[int, ...]]:
    """A learnt prior for every layer of ``stack``: floored 16-bit code frequencies.

    Counts the argmin codes of ``images`` (e.g. the training split) at every
    layer and quantises the counts with
    :func:`~compressai_hqa.entropy_models.quantize_frequencies` (every code keeps
    a frequency >= 1, so any code stays codable). Set them with
    :meth:`HQA.set_code_prior`.
    """
    from compressai_hqa.entropy_models import quantize_frequencies

    priors = {}
    for layer in range(1, stack.num_layers + 1):
        counts = count_codes(stack.truncate(layer).eval(), images, batch_size)
        priors[layer] = quantize_frequencies(counts.tolist())
    return priors
