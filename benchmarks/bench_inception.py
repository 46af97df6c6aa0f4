#!/usr/bin/env python3
"""Speed of the FID Inception: pytorch-fid's network as it is vs the folded form.

rFID dominates the evaluation time on a CPU (every reconstruction and original
goes through Inception-v3 at 299x299). :func:`compressai_hqa.metrics.inception.
load_inception` folds each convolution's batch norm into its weights and runs in
channels-last memory format. This script measures both forms in the same process
on the 100 MNIST digits embedded in the package, through
:func:`~compressai_hqa.metrics.fid.inception_features` (what rFID calls), and
prints seconds per image, the speed-up, and how far the folded form's features
and FID are from the reference's. CUDA timings synchronise the device.

    python benchmarks/bench_inception.py
    python benchmarks/bench_inception.py --device cuda --repeats 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from compressai_hqa.datasets import sample_digits
from compressai_hqa.metrics.fid import frechet_distance, inception_features
from compressai_hqa.metrics.inception import inception_weights, load_inception


def seconds_per_image(
    model: torch.nn.Module, images: torch.Tensor, batch_size: int, repeats: int
) -> tuple[float, np.ndarray]:
    """Best time over ``repeats`` passes (after one untimed pass), per image."""
    features = inception_features(images, model, batch_size)
    best = float("inf")
    for _ in range(repeats):
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)
        start = time.perf_counter()
        inception_features(images, model, batch_size)
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)
        best = min(best, time.perf_counter() - start)
    return best / len(images), features


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=50, help="(default: %(default)s)")
    p.add_argument(
        "--repeats", type=int, default=2, help="timed passes (default: %(default)s)"
    )
    args = p.parse_args()
    device = torch.device(args.device)
    digits = sample_digits().images.to(device)
    blurred = torch.nn.functional.avg_pool2d(digits, 3, 1, 1)
    weights = inception_weights()
    print(
        f"device={device} threads={torch.get_num_threads()} images={len(digits)} "
        f"batch={args.batch_size} torch={torch.__version__}"
    )
    results = {}
    for name, fold in (("pytorch-fid", False), ("folded+channels_last", True)):
        model = load_inception(device, weights, fold_batch_norm=fold)
        spi, feats = seconds_per_image(model, digits, args.batch_size, args.repeats)
        blur = inception_features(blurred, model, args.batch_size)
        results[name] = (spi, feats, frechet_distance(blur, feats))
    base_spi, base_feats, base_fid = results["pytorch-fid"]
    for name, (spi, feats, fid) in results.items():
        diff = np.abs(feats - base_feats).max()
        print(
            f"{name:>22}: {spi:.4f} s/image ({base_spi / spi:4.2f}x)  "
            f"max |feature diff| {diff:.1e}  FID(blurred, digits) {fid:.4f} "
            f"(diff {abs(fid - base_fid):.1e})"
        )


if __name__ == "__main__":
    main()
