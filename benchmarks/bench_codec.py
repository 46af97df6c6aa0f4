#!/usr/bin/env python3
"""Codec throughput of the shipped MNIST stack: uniform, learned and context priors.

For every layer and prior, in one process on the same digits, prints digits per
second of

* ``compress``: ``compress_images`` (HQA encoder, argmin codes, entropy coding);
* ``decompress``: ``decompress_images`` (validation, entropy decoding, HQA
  decoder), the ``compressai-hqa`` path;
* ``encode`` and ``decode``: the entropy coding alone (``encode_payload`` of the
  codes; ``read_codes``: container and payload validated and decoded),

each with its ratio to the uniform prior's, and the file's bytes per digit.

    OMP_NUM_THREADS=2 python benchmarks/bench_codec.py --data-root ../shared/data \\
        --threads 2 --output benchmarks/results/bench_codec-cpu-2threads.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compressai_hqa import zoo
from compressai_hqa.codec import (
    compress_images,
    decompress_images,
    payload_coder,
    read_codes,
)
from compressai_hqa.codec.format import encode_payload, unpack
from compressai_hqa.datasets import load_mnist

PRIORS = ("uniform", "learned", "context")
MEASURES = ("compress", "decompress", "encode", "decode")


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest of ``repeats`` runs (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def measure(model: Any, images: list[torch.Tensor], prior: str, repeats: int) -> dict:
    """Digits per second of the four measures, and bytes per digit."""
    n = len(images)
    seconds: dict[str, float] = {}
    seconds["compress"], data = _best(
        lambda: compress_images(model, images, prior), repeats
    )
    seconds["decompress"], _ = _best(lambda: decompress_images(data, model), repeats)
    header, codes = read_codes(data, model)
    flat = torch.cat([c.reshape(-1) for c in codes]).numpy().astype(np.int64)
    shapes = [header.latent_shape(s) for s in header.sizes]
    coder, _ = payload_coder(model, prior)
    k = model.codebook_size
    seconds["encode"], payload = _best(
        lambda: encode_payload(flat, prior, k, coder, shapes), repeats
    )
    assert payload == unpack(data)[1]
    seconds["decode"], _ = _best(lambda: read_codes(data, model), repeats)
    out = {m: n / seconds[m] for m in MEASURES}
    out["bytes_per_digit"] = len(data) / n
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="MNIST root")
    p.add_argument("--images", type=int, default=10000, help="test digits")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--repeats", type=int, default=1, help="best of N runs")
    p.add_argument("--layers", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    p.add_argument("--output", type=Path, default=None, help="also write the table")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    images = load_mnist(args.data_root, train=False).images[: args.images].unbind(0)
    stack = zoo.hqa(pretrained=True).eval()
    lines = [
        f"# OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} python "
        f"benchmarks/bench_codec.py --threads {args.threads} --images {args.images}",
        f"device=cpu threads={torch.get_num_threads()} torch={torch.__version__} "
        f"cpu={platform.processor() or platform.machine()} "
        f"load={os.getloadavg()[0]:.1f}",
        "digits/s (ratio to uniform); bytes/digit of the file",
        f"{'layer':>5} {'prior':>8} "
        + " ".join(f"{m:>18}" for m in MEASURES)
        + f" {'bytes/digit':>12}",
    ]
    print("\n".join(lines), flush=True)
    for layer in args.layers:
        model = stack.truncate(layer).eval()
        rows = {prior: measure(model, images, prior, args.repeats) for prior in PRIORS}
        for prior, row in rows.items():
            cells = [
                f"{row[m]:>9.0f} ({row[m] / rows['uniform'][m]:.2f}x)" for m in MEASURES
            ]
            line = f"{layer:>5} {prior:>8} " + " ".join(f"{c:>18}" for c in cells)
            line += f" {row['bytes_per_digit']:>12.2f}"
            lines.append(line)
            print(line, flush=True)
    lines.append(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(lines[-1])
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
