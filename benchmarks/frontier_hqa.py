"""HQA's points of the frontier benchmark: every layer, prior and decoding.

The pixels depend on the layer and the decoding only (every prior codes the same
argmin codes), so one :class:`~frontier_systems.Point` is built per (layer,
decoding); its ``notes`` carry the bits of each prior the shipped stack has
(uniform, learned, context): the real bytes of one ``.hqa`` file of all the
digits (``compress_images``, the header paid once) and the ideal -log2 p of the
codes under that prior.

The decodes are the trade-off benchmark's rows (``tradeoff_rows.decode_row``:
the same seeded draws, batch by batch), so a point's pixels, and so its rFID,
are those of the row of the same name in ``benchmarks/results/tradeoff/``
(``frontier.py --tradeoff`` reuses what either benchmark measured).
"""

from __future__ import annotations

import argparse
import math

from collections.abc import Callable, Iterator

import numpy as np
import torch

from frontier_systems import Point
from torch import Tensor
from tradeoff_rows import Row, argmin_codes, decode_row

__all__ = ["HQA_DECODINGS", "hqa_points"]

#: decodings shown, in the order of the table (the sampled one at --temperature).
HQA_DECODINGS = ("argmin", "sample", "mmse")
PRIORS = ("uniform", "learned", "context")


def _rates(model, images: Tensor) -> dict:
    """Real and ideal bits per digit of each prior the model has."""
    from compressai_hqa.codec import compress_images, payload_coder

    codes = argmin_codes(model, images)
    shape = tuple(codes.shape[1:])
    rates = {}
    for prior in PRIORS:
        try:
            coder, _ = payload_coder(model, prior)
        except ValueError:  # no such prior shipped for these weights
            continue
        data = compress_images(model, list(images), prior=prior)
        if prior == "uniform":
            ideal = codes[0].numel() * math.log2(model.codebook_size)
        elif prior == "context":
            flat = codes.reshape(-1).numpy().astype(np.int64)
            ideal = coder.bits(flat, [shape] * len(codes)) / len(codes)
        else:
            freqs = torch.tensor(coder.frequencies, dtype=torch.float64)
            bits = -torch.log2(freqs / freqs.sum())
            ideal = float(bits[codes.flatten()].sum() / len(codes))
        rates[prior] = {"bits": 8.0 * len(data) / len(images), "ideal_bits": ideal}
    return rates


def row_of(layer: int, decoding: str, temperature: float) -> Row:
    """The trade-off row of a frontier point."""
    name = f"sample-t{temperature:g}" if decoding == "sample" else decoding
    return Row(layer, name)


@torch.no_grad()
def hqa_points(
    images: Tensor,
    args: argparse.Namespace,
    known: Callable[[str, str], bool] | None = None,
) -> Iterator[Point]:
    """The shipped stack at every layer and decoding; a layer whose points are all
    ``known`` (cached) comes without reconstructions, its files not re-coded."""
    from compressai_hqa import zoo

    stack = zoo.hqa(pretrained=True).eval()
    for layer in range(stack.num_layers, 0, -1):
        settings = {}
        for name in HQA_DECODINGS:
            if name == "sample" and layer == 1:  # no layer below: argmin's pixels
                continue
            setting = f"layer {layer}, {name}"
            if name == "sample":
                setting += f" T={args.temperature:g}"
            settings[name] = setting
        if known is not None and all(known("hqa", s) for s in settings.values()):
            yield from (Point("hqa", s, None, []) for s in settings.values())
            continue
        model = stack.truncate(layer).eval()
        rates = _rates(model, images)
        for name, setting in settings.items():
            row = row_of(layer, name, args.temperature)
            x_hat = decode_row(stack, row, images, progress=True)
            uniform = rates["uniform"]
            yield Point(
                "hqa",
                setting,
                x_hat,
                [uniform["bits"]] * len(images),
                [uniform["ideal_bits"]] * len(images),
                {
                    "layer": layer,
                    "decoding": name,
                    "priors": rates,
                    "tradeoff_row": row.name,
                },
            )
