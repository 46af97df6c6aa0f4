#!/usr/bin/env python3
"""Codebook usage of an HQA stack on MNIST: how many of the K codes each layer uses.

For each layer (the stack truncated there), the argmin codes of every image are
counted: the number of codes used at least once (and of distinct ones among them:
near-copies, as the paper's reset makes, count once), and the entropy (bits) of their
empirical distribution, against the ``log2 K`` bits each code costs in the stream;
also the mean entropy of the posterior q(k | z_e) (see
:mod:`compressai_hqa.eval_model.codes`).

With ``--kmeans N``, also the code entropy a quantiser that only minimises the
squared error would reach on the same latent: k-means with K centroids on the
layer's encoder outputs z_e of the first N images (every position pooled, as
the layer's one codebook is), and the entropy (bits) of its assignments. Where
most positions see the same thing (the black border of a digit at layer 1), that
entropy is far below ``log2 K``: the reference for the code-entropy target.

    python zoo/tools/code_usage.py --data-root ../shared/data
    python zoo/tools/code_usage.py --data-root ../shared/data --weights runs/x/model.pth
    python zoo/tools/code_usage.py --data-root ../shared/data --kmeans 1000
"""

from __future__ import annotations

import argparse
import json

from pathlib import Path
from typing import Any

import torch

from torch import Tensor

from compressai_hqa import zoo
from compressai_hqa.baselines.clustering import run_kmeans
from compressai_hqa.datasets import load_mnist
from compressai_hqa.eval_model.codes import code_statistics, entropy_bits
from compressai_hqa.models import HQA


@torch.no_grad()
def kmeans_entropy_bits(
    stack: HQA, images: Tensor, max_iter: int = 30, seed: int = 0
) -> float:
    """Entropy (bits) of the assignments of k-means with K centroids (K: the top
    layer's codebook size) fitted on the top layer's z_e of ``images``."""
    z_e = torch.cat(
        [stack.encode(images[i : i + 500]) for i in range(0, len(images), 500)]
    )
    points = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    k = stack.codebook_size
    fit = run_kmeans(points, k, max_iter=max_iter, tol=1e-4, seed=seed)
    return entropy_bits(torch.bincount(fit.assignments, minlength=stack.codebook_size))


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
    p.add_argument(
        "--kmeans",
        type=int,
        default=0,
        metavar="N",
        help="also the entropy of k-means (K centroids, seed 0) on each layer's z_e "
        "of the first N images (default: 0, none)",
    )
    p.add_argument("--output", type=Path, default=None, help="JSON file to write")
    args = p.parse_args()
    if args.kmeans < 0:
        p.error("--kmeans must be >= 0")

    images = load_mnist(args.data_root, train=args.split == "train").images
    stack = zoo.hqa(pretrained=True, config=args.config, weights=args.weights)
    result: dict[str, Any] = {
        "weights": str(args.weights or "shipped"),
        "split": args.split,
        "num_images": len(images),
        "layers": {},
    }
    if args.kmeans:
        result["kmeans_images"] = min(args.kmeans, len(images))
    print(
        "layer  codes used / K  distinct  entropy (bits)  bits per code"
        "  posterior H (bits)" + ("  k-means entropy (bits)" if args.kmeans else "")
    )
    for layer in range(1, stack.num_layers + 1):
        model = stack.truncate(layer).eval()
        row: dict[str, Any] = code_statistics(model, images).to_dict()
        if args.kmeans:
            row["kmeans_entropy_bits"] = kmeans_entropy_bits(
                model, images[: args.kmeans]
            )
        result["layers"][str(layer)] = row
        print(
            f"{layer:5d}  {row['codes_used']:6d} / {row['codebook_size']:<4d}"
            f"  {row['distinct_codes_used']:8d}  {row['entropy_bits']:14.2f}"
            f"  {row['bits_per_code']:13.0f}"
            f"  {row['posterior_entropy_bits']:18.3f}"
            + (f"  {row['kmeans_entropy_bits']:22.2f}" if args.kmeans else "")
        )
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
