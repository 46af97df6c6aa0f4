"""MNIST digits as users hold them: 28x28 PNGs, and 16-bit PNGs, through the CLI.

Writes the first ``--images`` MNIST test digits as 28x28 8-bit PNGs and as
16-bit PNGs (value x 257, PIL mode ``I;16``), then runs ``compressai-hqa
compress`` and ``decompress`` at ``--layer`` on them: the 8-bit PNGs coded at
their own size and with ``--resize``, the 16-bit ones with ``--resize``. Prints,
for each, the error of the shipped MNIST classifier on the decoded digits
(resized to 32x32 when decoded at 28x28) and the MSE of the decodes against the
digits the model sees (the 28x28 digits resized to 32x32 as in training).

    python benchmarks/mnist_pngs.py --data-root ../shared/data [--images 16] [--layer 5]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile

from pathlib import Path

import numpy as np
import torch

from PIL import Image

from compressai_hqa.codec import cli
from compressai_hqa.datasets import MNIST_FILES, resize_images
from compressai_hqa.metrics.classifier import load_classifier, predict

ROOT = Path(__file__).resolve().parents[1]


def read_idx(path: Path, offset: int) -> np.ndarray:
    return np.frombuffer(gzip.decompress(path.read_bytes())[offset:], np.uint8)


def decoded(folder: Path) -> torch.Tensor:
    """The PNGs of a folder as (N, 1, H, W) floats in [0, 1]."""
    files = sorted(folder.iterdir())
    pixels = np.stack([np.array(Image.open(f)) for f in files])
    return torch.from_numpy(pixels).float().div(255).unsqueeze(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--layer", type=int, default=5)
    args = parser.parse_args()
    raw = Path(args.data_root) / "MNIST" / "raw"
    n = args.images
    digits = read_idx(raw / MNIST_FILES[False][0], 16)[: n * 784].reshape(n, 28, 28)
    digits = digits.copy()  # writable
    labels = torch.from_numpy(read_idx(raw / MNIST_FILES[False][1], 8)[:n].copy())
    target = resize_images(torch.from_numpy(digits).float().div(255).unsqueeze(1), 32)
    classifier = load_classifier()
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"8-bit": Path(tmp) / "png8", "16-bit": Path(tmp) / "png16"}
        for folder in folders.values():
            folder.mkdir()
        for i, digit in enumerate(digits):
            Image.fromarray(digit).save(folders["8-bit"] / f"{i:05d}.png")
            wide = digit.astype(np.uint16) * 257
            Image.fromarray(wide).save(folders["16-bit"] / f"{i:05d}.png")
        runs = (("8-bit PNGs at their own size", "8-bit", []),
                ("8-bit PNGs, --resize", "8-bit", ["--resize"]),
                ("16-bit PNGs, --resize", "16-bit", ["--resize"]))  # fmt: skip
        for name, source, extra in runs:
            out = Path(tmp) / f"{name}.hqa"
            cli.main(["compress", str(folders[source]), "-o", str(out), "--layer",
                      str(args.layer), "-q", *extra])  # fmt: skip
            dec = Path(tmp) / f"{name}-decoded"
            cli.main(["decompress", str(out), "-o", str(dec), "-q"])
            x = decoded(dec)
            x32 = x if x.shape[-1] == 32 else resize_images(x, 32)
            wrong = int((predict(classifier, x32) != labels).sum())
            mse = float(((x32 - target) ** 2).mean())
            print(f"{name}, layer {args.layer}: {wrong} of {n} decoded digits "
                  f"misclassified, MSE {mse:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
