"""HQA's points of the frontier benchmark: every layer, prior and decoding.

The pixels depend on the layer and the decoding only (every prior codes the same
argmin codes), so one :class:`~frontier_systems.Point` is built per (layer,
decoding); its ``notes`` carry the bits of each prior: the real bytes of one
``.hqa`` file of all the digits (``compress_images``, the header paid once) and
the ideal -log2 p of the codes under that prior.
"""

from __future__ import annotations

import argparse
import math

from collections.abc import Iterator

import torch

from frontier_systems import Point
from torch import Tensor

__all__ = ["HQA_DECODINGS", "hqa_points"]

#: decodings shown, in the order of the table: (name, mode, temperature).
HQA_DECODINGS = ("argmin", "sample", "mmse")


def _priors(model) -> tuple[str, ...]:
    from compressai_hqa.models.hqa import PRIORS

    available = []
    for prior in PRIORS:
        try:
            model.coder(prior)
        except ValueError:
            continue
        available.append(prior)
    return tuple(available)


def _ideal_bits(model, prior: str, codes: Tensor) -> float:
    """Mean -log2 p of the codes (N, h, w) under ``prior``, per digit."""
    if prior == "uniform":
        return codes[0].numel() * math.log2(model.codebook_size)
    coder = model.coder(prior)
    if hasattr(coder, "code_lengths"):  # a context model: per-code lengths
        return float(coder.code_lengths(codes).sum() / len(codes))
    freqs = torch.tensor(coder.frequencies, dtype=torch.float64)
    bits = -torch.log2(freqs / freqs.sum())
    return float(bits[codes.flatten()].sum() / len(codes))


def _rates(model, images: Tensor) -> dict:
    from compressai_hqa.codec import compress_images

    codes = torch.cat(
        [model.quantize(images[i : i + 1000]) for i in range(0, len(images), 1000)]
    )
    rates = {}
    for prior in _priors(model):
        data = compress_images(model, list(images), prior=prior)
        rates[prior] = {
            "bits": 8.0 * len(data) / len(images),
            "ideal_bits": _ideal_bits(model, prior, codes),
        }
    return rates


def _decode(model, images: Tensor, name: str, args: argparse.Namespace) -> Tensor:
    from compressai_hqa.decoding import Decoding

    generator = torch.Generator().manual_seed(0)
    temperature = args.temperature if name == "sample" else 1.0
    decoding = Decoding(name, temperature=temperature, generator=generator)
    parts = []
    for i in range(0, len(images), 500):
        x = images[i : i + 500]
        parts.append(model.decode(model.quantize(x), decoding, size=x.shape[-2:]))
    return torch.cat(parts)


@torch.no_grad()
def hqa_points(images: Tensor, args: argparse.Namespace) -> Iterator[Point]:

    from compressai_hqa import zoo

    for layer in range(5, 0, -1):
        model = zoo.hqa(layer=layer, pretrained=True).eval()
        rates = _rates(model, images)
        for name in HQA_DECODINGS:
            if name == "sample" and layer == 1:  # no layer below: argmin's pixels
                continue
            try:
                x_hat = _decode(model, images, name, args)
            except ValueError as e:  # a decoding these weights do not have
                print(f"HQA layer {layer} {name}: skipped ({e})")
                continue
            setting = f"layer {layer}, {name}"
            if name == "sample":
                setting += f" T={args.temperature:g}"
            uniform = rates["uniform"]
            yield Point(
                "hqa",
                setting,
                x_hat,
                [uniform["bits"]] * len(images),
                [uniform["ideal_bits"]] * len(images),
                {"layer": layer, "decoding": name, "priors": rates},
            )
