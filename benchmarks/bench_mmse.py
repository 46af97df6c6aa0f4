#!/usr/bin/env python3
"""Decoding speed of the MMSE decoders against argmin decoding, layer by layer.

For every layer that has an MMSE decoder, decodes the same code maps (the
argmin codes of the 100 MNIST test digits embedded in the package, repeated to
``--images``) with ``HQA.decode`` by argmin and by ``"mmse"`` (the MMSE decoder),
alternating the two in the same process, and prints the best time of
``--repeats`` passes of each (after one untimed pass) and their ratio
(MMSE / argmin: below 1 is faster).

    python benchmarks/bench_mmse.py                       # the shipped decoders
    python benchmarks/bench_mmse.py --mmse runs/mmse.pth --json speed.json
"""

from __future__ import annotations

import argparse
import json
import time

from collections.abc import Callable

import torch

from compressai_hqa.datasets import sample_digits
from compressai_hqa.files import atomic_write
from compressai_hqa.zoo import hqa
from compressai_hqa.zoo.mmse import mmse_decoders


def seconds(
    decode: Callable[[torch.Tensor], torch.Tensor],
    codes: torch.Tensor,
    batch_size: int,
) -> float:
    """Wall time of decoding all ``codes`` in batches of ``batch_size``."""
    start = time.perf_counter()
    for i in range(0, len(codes), batch_size):
        decode(codes[i : i + batch_size])
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mmse", default=None, help="MMSE decoders (default: shipped)")
    p.add_argument("--images", type=int, default=2000, help="code maps decoded")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    stack = hqa(pretrained=True)
    decoders = mmse_decoders(stack, args.mmse)
    digits = sample_digits(stack.config.image_size).images
    digits = digits.repeat((args.images + len(digits) - 1) // len(digits), 1, 1, 1)
    size = digits.shape[-2:]
    rows = []
    with torch.inference_mode():
        for layer in decoders.layers:
            model = stack.truncate(layer)
            model.set_mmse(decoders)
            codes = model.quantize(digits[: args.images])
            modes = {  # both through HQA.decode, as a reader decodes a file
                "argmin": lambda c, m=model: m.decode(c, size=size),
                "mmse": lambda c, m=model: m.decode(c, "mmse", size),
            }
            times = {name: [] for name in modes}
            for decode in modes.values():  # untimed pass
                seconds(decode, codes[: args.batch_size], args.batch_size)
            for _ in range(args.repeats):
                for name, decode in modes.items():
                    times[name].append(seconds(decode, codes, args.batch_size))
            argmin, mmse = min(times["argmin"]), min(times["mmse"])
            rows.append(
                {
                    "layer": layer,
                    "kind": decoders.specs[layer].kind,
                    "argmin_ms_per_image": 1000 * argmin / len(codes),
                    "mmse_ms_per_image": 1000 * mmse / len(codes),
                    "ratio": mmse / argmin,
                }
            )
            r = rows[-1]
            print(
                f"layer {layer} ({r['kind']}): argmin "
                f"{r['argmin_ms_per_image']:.4f} ms/image, mmse "
                f"{r['mmse_ms_per_image']:.4f} ms/image, ratio {r['ratio']:.2f}"
            )
    if args.json:
        result = {**vars(args), "results": rows}
        atomic_write(args.json, (json.dumps(result, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
