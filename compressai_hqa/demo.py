"""``python -m compressai_hqa.demo``: the pretrained MNIST stack on the embedded digits.

Compresses the 100 MNIST test digits shipped in the package to real rANS
bitstreams at every layer of the pretrained stack, decompresses them, prints a
table (ideal bits and real bytes per image, MSE, PSNR, error of the shipped MNIST
classifier on the reconstructions) and writes a grid of reconstructions.
"""

from __future__ import annotations

import math
import sys

from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["main", "run"]


@torch.no_grad()
def run(output: Path, columns: int = 16) -> list[dict[str, float]]:
    """Runs the demo; returns one row of metrics per layer."""
    from compressai_hqa import zoo
    from compressai_hqa.datasets import sample_digits
    from compressai_hqa.figures.grid import GridLayout
    from compressai_hqa.figures.hqa import layers_figure
    from compressai_hqa.metrics.classifier import load_classifier

    digits = sample_digits()
    x, labels = digits.images, digits.labels
    stack = zoo.hqa(pretrained=True)
    classifier = load_classifier("cpu")
    rows = []
    for layer in range(1, stack.num_layers + 1):
        model = stack.truncate(layer).eval()
        out = model.compress(x)
        x_hat = model.decompress(out["strings"], out["shape"])["x_hat"].clamp(0, 1)
        mse = (x_hat - x).square().mean().item()
        rows.append(
            {
                "layer": layer,
                "bits": model.bits(32, 32),
                "bytes": sum(len(s) for s in out["strings"][0]) / len(x),
                "mse": mse,
                "psnr": 10 * math.log10(1.0 / mse),
                "class_error": (classifier(x_hat).argmax(1) != labels)
                .float()
                .mean()
                .item(),
            }
        )
    original_error = (classifier(x).argmax(1) != labels).float().mean().item()
    print(f"HQA ({stack.config.name}) on the {len(x)} embedded MNIST test digits")
    print(f"classifier error on the originals: {original_error * 100:.1f} %")
    print("layer  bits/image  rANS bytes/image     MSE   PSNR (dB)  class. error")
    for r in rows:
        print(
            f"{r['layer']:>5}  {r['bits']:>10}  {r['bytes']:>16.0f}  {r['mse']:.4f}"
            f"  {r['psnr']:>9.2f}  {r['class_error'] * 100:>11.1f} %"
        )
    layout = GridLayout(scale=2, padding=2, label_width=64)
    figure = layers_figure(stack, x[:columns], layout)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.save(output)
    print(f"reconstructions (originals, then layers 1..{stack.num_layers}): {output}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the demo; returns 0.

    Raises:
        SystemExit: an error, printed in one line, with the exit status of
            :mod:`compressai_hqa.commands` (1: usage, 2: bad data, 130).
    """
    from compressai_hqa.commands import CommandParser, run_command

    parser = CommandParser(prog="python -m compressai_hqa.demo", description=__doc__)
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("hqa_demo.png"),
        help="where to write the reconstruction grid (default: %(default)s)",
    )
    parser.add_argument(
        "--columns", type=int, default=16, help="digits in the grid (default: 16)"
    )
    args = parser.parse_args(argv)
    from compressai_hqa.zoo import PretrainedUnavailableError

    run_command(
        lambda: run(args.output, args.columns),
        parser.prog,
        usage=(PretrainedUnavailableError, RuntimeError),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
