"""Trains the MNIST classifier that scores reconstructions ("class-error").

The classifier (:class:`compressai_hqa.metrics.classifier.MNISTClassifier`) sees
MNIST exactly as :func:`compressai_hqa.datasets.load_mnist` returns it: 32x32,
pixels in [0, 1]. Training uses random shifts of up to 2 pixels, Adam and a cosine
learning-rate schedule; it is deterministic for a given seed (on a given machine
and thread count) and takes a few minutes on a CPU. The shipped weights
(``compressai_hqa/assets/mnist_classifier.pt``) were made with::

    python examples/train_mnist_classifier.py --data-root ../shared/data

which prints the test accuracy and the SHA-256 to pin in
``compressai_hqa/metrics/classifier.py``. (``torch.save`` names the archive inside
the file after the file, so the SHA-256 is that of the weights saved under this
name; a rerun to another path gives bit-identical tensors but another hash.)
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.datasets import load_mnist
from compressai_hqa.files import file_digest
from compressai_hqa.metrics.classifier import MNISTClassifier, predict

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parents[1]
    / "compressai_hqa"
    / "assets"
    / "mnist_classifier.pt"
)


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Each image moved by whole pixels in [-max_shift, max_shift], zeros padded."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = shifts[:, 0] * 2.0 / w
    theta[:, 1, 2] = shifts[:, 1] * 2.0 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", align_corners=False)


def setup_args() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root",
        default="../shared/data",
        help="folder holding MNIST/raw/*-ubyte.gz (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, default=8, help="passes over the 60k training digits"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size")
    parser.add_argument("--lr", type=float, default=2e-3, help="initial Adam lr")
    parser.add_argument(
        "--max-shift", type=int, default=2, help="augmentation: max shift in pixels"
    )
    parser.add_argument(
        "--output",
        default=str(DEFAULT_OUTPUT),
        help="where to save the state dict (default: the package's asset)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> float:
    args = setup_args().parse_args(argv)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator().manual_seed(args.seed)

    train = load_mnist(args.data_root, train=True)
    test = load_mnist(args.data_root, train=False)
    model = MNISTClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total = args.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total))
    )
    print(
        f"{sum(p.numel() for p in model.parameters())} parameters, "
        f"{args.epochs} epochs of {steps_per_epoch} steps",
        file=sys.stderr,
    )
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        running = 0.0
        for i in range(0, len(train), args.batch_size):
            idx = order[i : i + args.batch_size]
            x = random_shift(train.images[idx], args.max_shift, generator)
            loss = F.cross_entropy(model(x), train.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(idx)
        accuracy = (predict(model, test.images) == test.labels).float().mean().item()
        print(
            f"epoch {epoch + 1}: train loss {running / len(train):.4f}, "
            f"test accuracy {accuracy:.4f} ({time.time() - start:.0f} s)",
            file=sys.stderr,
        )

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), output)
    digest = file_digest(output)
    print(f"test accuracy {accuracy:.4f} ({round(accuracy * len(test))}/{len(test)})")
    print(f"saved {output} (SHA-256 {digest})")
    return accuracy


if __name__ == "__main__":
    main()
