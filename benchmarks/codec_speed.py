"""What batch-invariant coding costs: the codec's network time, before and after.

On the MNIST test digits with the shipped stack, at every layer, in one
process: the time to quantise and to decode them (argmin) the way the codec did
before (batches of 256 at the process's thread count) and the way it does now
(``compressai_hqa.codec.batching``: fixed chunks on one thread). Prints images/s
and the ratio new / old (above 1: the new path is faster); the best of
``--repeats`` runs of each.

    python benchmarks/codec_speed.py --data-root ../shared/data [--images 1000]
        [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import time

from collections.abc import Callable
from pathlib import Path

import torch

from compressai_hqa import zoo
from compressai_hqa.codec.batching import chunk_size, image_bytes, run_chunk
from compressai_hqa.datasets import load_mnist

ROOT = Path(__file__).resolve().parents[1]


def best(fn: Callable[[], object], repeats: int) -> float:
    """The shortest of ``repeats`` timings of ``fn`` in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batched(fn: Callable, items: torch.Tensor, batch: int) -> torch.Tensor:
    """The former path: batches of ``batch`` at the process's thread count."""
    return torch.cat([fn(items[i : i + batch]) for i in range(0, len(items), batch)])


def chunked(fn: Callable, items: torch.Tensor, chunk: int) -> torch.Tensor:
    """The codec's path: chunks of exactly ``chunk`` on one thread."""
    return torch.cat(
        [
            run_chunk(fn, items[i : i + chunk], chunk)
            for i in range(0, len(items), chunk)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's")
    parser.add_argument(
        "--json", default=str(ROOT / "benchmarks/results/codec_speed.json")
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = load_mnist(args.data_root, train=False).images[: args.images]
    stack = zoo.hqa(pretrained=True)
    rows = []
    print(f"{len(x)} digits, {torch.get_num_threads()} threads for the former path")
    print("layer  operation  former img/s  codec img/s  codec / former")
    with torch.no_grad():
        for layer in range(1, stack.num_layers + 1):
            model = stack.truncate(layer).eval()
            codes = model.quantize(x)
            for op, fn, items in (("encode", model.quantize, x),
                                  ("argmin", model.decode, codes)):  # fmt: skip
                chunk = chunk_size(image_bytes(model, 32, 32, op))
                former = best(lambda f=fn, i=items: batched(f, i, 256), args.repeats)
                codec = best(lambda f=fn, i=items, c=chunk: chunked(f, i, c),
                             args.repeats)  # fmt: skip
                row = dict(layer=layer, operation=op, chunk=chunk,
                           former_per_s=len(x) / former, codec_per_s=len(x) / codec,
                           ratio=former / codec)  # fmt: skip
                rows.append(row)
                print(
                    f"{layer:5d}  {op:9s}  {row['former_per_s']:12.0f}  "
                    f"{row['codec_per_s']:11.0f}  {row['ratio']:14.2f}",
                    flush=True,
                )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    meta = dict(images=len(x), threads=torch.get_num_threads(), repeats=args.repeats)
    Path(args.json).write_text(
        json.dumps({"setup": meta, "rows": rows}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
