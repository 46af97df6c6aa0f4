#!/usr/bin/env python3
"""Training throughput of the MNIST HQA stack: eager vs channels_last vs torch.compile.

For every layer, runs the trainer's own step (``training_step``: layer input from
the frozen layers below, forward, backward, moment clearing, clipping, RAdam) on
the same batch for each variant, and prints images/s and the ratio to the eager
baseline measured in the same process. CUDA timings synchronise the device;
CUDA runs use bf16 autocast like the trainer.

    python benchmarks/bench_train.py                       # CPU, batch 512
    python benchmarks/bench_train.py --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import time

from contextlib import nullcontext
from pathlib import Path

import torch

from compressai_hqa import HQA
from compressai_hqa.training.trainer import training_step

VARIANTS = ("eager", "channels_last", "compile", "compile+channels_last")


def _images(data_root: Path | None, n: int, device: torch.device) -> torch.Tensor:
    if data_root is None:
        return torch.rand(n, 1, 32, 32, device=device)
    from compressai_hqa.datasets import load_mnist

    return load_mnist(data_root, train=True).images[:n].to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    layer: int, variant: str, x: torch.Tensor, steps: int, warmup: int
) -> float:
    """Images per second of ``steps`` training steps of ``layer`` (after warm-up)."""
    device = x.device
    torch.manual_seed(0)
    stack = HQA("mnist", num_layers=layer).to(device).train()
    channels_last = "channels_last" in variant
    if channels_last:
        stack = stack.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    torch._dynamo.reset()  # each measurement compiles afresh (no recompile limit)
    module = torch.compile(stack.top) if variant.startswith("compile") else stack.top
    optimizer = torch.optim.RAdam(stack.top.parameters(), lr=4e-4)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else nullcontext()
    )
    for _ in range(warmup):
        training_step(stack, module, optimizer, x, 1.0, autocast)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        training_step(stack, module, optimizer, x, 1.0, autocast)
    _sync(device)
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=512, help="(default: %(default)s)")
    p.add_argument(
        "--steps", type=int, default=5, help="timed steps (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=int, default=2, help="untimed steps (default: %(default)s)"
    )
    p.add_argument("--layers", default="1,2,3,4,5", help="(default: %(default)s)")
    p.add_argument(
        "--variants", default=",".join(VARIANTS), help="(default: %(default)s)"
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="MNIST root for real images (default: random images)",
    )
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # as the trainer does
    x = _images(args.data_root, args.batch_size, device)
    variants = [v for v in args.variants.split(",") if v]
    print(
        f"device={device} threads={torch.get_num_threads()} batch={args.batch_size} "
        f"steps={args.steps} warmup={args.warmup} torch={torch.__version__}"
    )
    print(f"{'layer':>5} " + " ".join(f"{v:>24}" for v in variants))
    for layer in (int(s) for s in args.layers.split(",")):
        rates = {v: measure(layer, v, x, args.steps, args.warmup) for v in variants}
        base = rates.get("eager")
        cells = [
            f"{r:9.0f} img/s" + (f" ({r / base:4.2f}x)" if base else "")
            for r in rates.values()
        ]
        print(f"{layer:>5} " + " ".join(f"{c:>24}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
