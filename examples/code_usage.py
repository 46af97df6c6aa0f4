#!/usr/bin/env python3
"""Codebook usage of an HQA stack on MNIST: how many of the K codes each layer uses.

For each layer (the stack truncated there), the argmin codes of every image are
counted: the number of codes used at least once, and the entropy (bits) of their
empirical distribution, against the ``log2 K`` bits each code costs in the stream;
also the mean entropy of the posterior q(k | z_e) (see
:mod:`compressai_hqa.eval_model.codes`).

    python examples/code_usage.py --data-root ../shared/data
    python examples/code_usage.py --data-root ../shared/data --weights runs/x/model.pth
"""

from __future__ import annotations

import argparse
import json

from pathlib import Path
from typing import Any

from compressai_hqa import zoo
from compressai_hqa.datasets import load_mnist
from compressai_hqa.eval_model.codes import code_statistics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="MNIST root")
    p.add_argument(
        "--weights", default=None, help="state dict to inspect (default: shipped)"
    )
    p.add_argument(
        "--config",
        default=None,
        help="zoo config (default: that of --weights, else mnist)",
    )
    p.add_argument(
        "--split", choices=("test", "train"), default="test", help="(default: test)"
    )
    p.add_argument("--output", type=Path, default=None, help="JSON file to write")
    args = p.parse_args()

    images = load_mnist(args.data_root, train=args.split == "train").images
    stack = zoo.hqa(pretrained=True, config=args.config, weights=args.weights)
    result: dict[str, Any] = {
        "weights": str(args.weights or "shipped"),
        "split": args.split,
        "num_images": len(images),
        "layers": {},
    }
    print("layer  codes used / K  entropy (bits)  bits per code  posterior H (bits)")
    for layer in range(1, stack.num_layers + 1):
        row = code_statistics(stack.truncate(layer).eval(), images).to_dict()
        result["layers"][str(layer)] = row
        print(
            f"{layer:5d}  {row['codes_used']:6d} / {row['codebook_size']:<4d}"
            f"  {row['entropy_bits']:14.2f}  {row['bits_per_code']:13.0f}"
            f"  {row['posterior_entropy_bits']:18.3f}"
        )
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
