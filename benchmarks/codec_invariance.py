"""Are the codec's codes and PNGs a function of the image (or file) alone?

On the first ``--images`` MNIST test digits with the shipped stack, at every
layer:

* **compress**: the codes of every digit compressed alone (a one-image file)
  against those of the same digit in files of 256 digits, at 1 and 2 threads;
* **decompress**: the PNGs that ``compressai-hqa decompress`` writes for the
  file of all digits with ``--batch-size`` 1, 2, 7 and the default, at 1 and 2
  threads, for the file in reverse order, and for every digit decoded from a
  one-image file;
* **former path**, for contrast: the 8-bit decodes of the same codes by
  ``model.decode`` in batches of 256 against batches of 1 (what the codec did
  before), and the codes of ``model.quantize`` likewise.

Prints the number of differing digits per comparison (0 expected but for the
former path) and writes them as JSON.

    python benchmarks/codec_invariance.py --data-root ../shared/data [--images 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile

from pathlib import Path

import numpy as np
import torch

from PIL import Image

from compressai_hqa import zoo
from compressai_hqa.codec import cli, compress_images, read_codes
from compressai_hqa.codec.commands import to_uint8
from compressai_hqa.datasets import load_mnist

ROOT = Path(__file__).resolve().parents[1]


def codes_of(model, images: list[torch.Tensor], threads: int) -> torch.Tensor:
    """The codes a file of ``images`` holds, compressed at ``threads`` threads."""
    torch.set_num_threads(threads)
    _, codes = read_codes(compress_images(model, images), model)
    return torch.stack(codes)


def pngs(path: Path, *options: str, threads: int = 1) -> np.ndarray:
    """The PNGs ``compressai-hqa decompress`` writes for ``path``, (N, H, W)."""
    torch.set_num_threads(threads)
    out = path.parent / f"dec-{path.stem}-{'-'.join(options) or 'default'}-{threads}"
    cli.main(["decompress", str(path), "-o", str(out), "-q", *options])
    files = sorted(out.iterdir())
    return np.stack([np.array(Image.open(f)) for f in files])


def differing(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> int:
    """Digits (first axis) that differ anywhere."""
    a, b = np.asarray(a), np.asarray(b)
    return int((a != b).reshape(len(a), -1).any(1).sum())


def layer_report(model, x: torch.Tensor, folder: Path) -> dict[str, int]:
    images = list(x.unbind(0))
    n = len(images)
    alone = torch.cat([codes_of(model, [image], 1) for image in images])
    report = {}
    for threads in (1, 2):
        batched = torch.cat([codes_of(model, images[i : i + 256], threads)
                             for i in range(0, n, 256)])  # fmt: skip
        report[f"compress: alone vs files of 256, {threads} thread(s)"] = differing(
            alone, batched
        )
    torch.set_num_threads(1)
    path = folder / f"layer{model.num_layers}.hqa"
    path.write_bytes(compress_images(model, images))
    reference = pngs(path)
    for options, threads in (((), 2), (("--batch-size", "1"), 1),
                             (("--batch-size", "2"), 1), (("--batch-size", "7"), 1),
                             (("--batch-size", "7"), 2)):  # fmt: skip
        name = f"decompress: {' '.join(options) or 'default'}, {threads} thread(s)"
        report[name] = differing(reference, pngs(path, *options, threads=threads))
    reverse = folder / f"layer{model.num_layers}-reversed.hqa"
    reverse.write_bytes(compress_images(model, images[::-1]))
    report["decompress: file in reverse order"] = differing(
        reference, pngs(reverse)[::-1]
    )
    single = []
    for i, image in enumerate(images):
        one = folder / f"one-{i}.hqa"
        one.write_bytes(compress_images(model, [image]))
        single.append(pngs(one)[0])
    report["decompress: every digit from a one-image file"] = differing(
        reference, np.stack(single)
    )
    torch.set_num_threads(2)
    with torch.no_grad():
        codes = model.quantize(x)
        wide = torch.cat([model.decode(codes[i : i + 256]) for i in range(0, n, 256)])
        narrow = torch.cat([model.decode(codes[i : i + 1]) for i in range(n)])
        report["former path: decode, batches of 256 vs 1"] = differing(
            to_uint8(wide), to_uint8(narrow)
        )
        report["former path: quantize, batches of 256 vs 1"] = differing(
            torch.cat([model.quantize(x[i : i + 256]) for i in range(0, n, 256)]),
            torch.cat([model.quantize(x[i : i + 1]) for i in range(n)]),
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument(
        "--json", default=str(ROOT / "benchmarks/results/codec_invariance.json")
    )
    args = parser.parse_args()
    x = load_mnist(args.data_root, train=False).images[: args.images]
    stack = zoo.hqa(pretrained=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for layer in args.layers:
            folder = Path(tmp) / f"layer{layer}"
            folder.mkdir()
            report = layer_report(stack.truncate(layer).eval(), x, folder)
            results[layer] = report
            for what, count in report.items():
                print(f"layer {layer}: {what}: {count} of {len(x)} digits differ")
            print(flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps({"images": len(x), "layers": results}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
