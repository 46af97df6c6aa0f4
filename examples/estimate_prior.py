#!/usr/bin/env python3
"""(Re)estimates the learned code prior of an HQA stack and measures its rates.

For every layer, counts the argmin codes of the MNIST training split, quantises
the counts to 16-bit frequencies (each code keeps a frequency >= 1, so every
code stays codable) and stores them with the weights (``_extra_state`` of the
state dict, see ``HQA.code_priors``). Then compresses the 10,000 test digits
into one ``.hqa`` file per layer with each prior (the ``compressai-hqa`` code
path): uniform, learned and, when the weights have one (the shipped context
prior, or ``--context-prior``; ``examples/estimate_context_prior.py`` fits
one), context; checks that all decode to the same codes, and prints bits and
bytes per digit: the same reconstructions, fewer bits.

    python examples/estimate_prior.py --data-root ../shared/data \\
        --json zoo/results/codec-mnist-test.json
    # re-estimate and write new weights
    python examples/estimate_prior.py --data-root ../shared/data \\
        --weights runs/mnist/model.pth --output runs/mnist/model-prior.pth
"""

from __future__ import annotations

import argparse
import json
import math

from pathlib import Path
from typing import Any

import torch

from compressai_hqa import zoo
from compressai_hqa.codec import (
    compress_images,
    estimate_code_priors,
    payload_coder,
    read_codes,
)
from compressai_hqa.codec.batching import chunk_size, image_bytes, run_chunk
from compressai_hqa.codec.format import unpack
from compressai_hqa.datasets import load_mnist
from compressai_hqa.files import atomic_save, file_digest
from compressai_hqa.models import HQA


@torch.no_grad()
def measure(
    model: HQA, images: torch.Tensor, prior: str, context: Any = None
) -> dict[str, Any]:
    """File size and ideal bits of ``images`` at ``model``'s top layer."""
    data = compress_images(model, images.unbind(0), prior, context_prior=context)
    header, codes = read_codes(data, model, context_prior=context)  # validated
    stacked = torch.stack(codes)
    # the codes as the codec computes them: fixed chunks on one thread
    chunk = chunk_size(image_bytes(model, *images.shape[-2:], "encode"))
    expected = torch.cat(
        [
            run_chunk(model.quantize, images[i : i + chunk], chunk).cpu()
            for i in range(0, len(images), chunk)
        ]
    )
    if not torch.equal(stacked, expected):
        raise RuntimeError(f"the {prior} file does not decode to the codes")
    n = len(images)
    _, payload = unpack(data)
    coder, _ = payload_coder(model, prior, context)
    if prior == "context":
        shapes = [header.latent_shape(s) for s in header.sizes]
        ideal = coder.bits(stacked.reshape(-1).numpy(), shapes)
    else:
        ideal = coder.bits(stacked)
    return {
        "file_bytes": len(data),
        "header_bytes": len(data) - len(payload),
        "bytes_per_digit": len(data) / n,
        "payload_bits_per_digit": 8 * len(payload) / n,
        "ideal_bits_per_digit": ideal / n,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="MNIST root")
    p.add_argument(
        "--weights", default=None, help="state dict (default: the shipped weights)"
    )
    p.add_argument(
        "--keep-prior",
        action="store_true",
        help="measure the prior stored in the weights instead of re-estimating it",
    )
    p.add_argument(
        "--output", type=Path, default=None, help="write the weights with the prior"
    )
    p.add_argument("--json", type=Path, default=None, help="write the rates as JSON")
    p.add_argument(
        "--context-prior",
        default=None,
        help="context prior file of --weights (default: the shipped one, if any)",
    )
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument(
        "--num-images",
        type=int,
        default=None,
        metavar="N",
        help="use the first N digits of each split only (quick checks)",
    )
    args = p.parse_args()

    stack = zoo.hqa(pretrained=True, weights=args.weights)
    if not args.keep_prior:
        train = load_mnist(args.data_root, train=True).images[: args.num_images]
        for layer, freqs in estimate_code_priors(stack, train, args.batch_size).items():
            stack.set_code_prior(layer, freqs)
    if args.output is not None:
        atomic_save(stack.state_dict(), args.output)
        print(f"wrote {args.output} (SHA-256 {file_digest(args.output)})")

    test = load_mnist(args.data_root, train=False).images[: args.num_images]
    rows: dict[str, Any] = {}
    print(f"{len(test)} MNIST test digits, one .hqa file per layer and prior")
    print(
        "layer    prior  bytes/digit  payload bits/digit  ideal bits/digit  "
        "bits/digit saved vs uniform (%)"
    )
    for layer in range(1, stack.num_layers + 1):
        model = stack.truncate(layer).eval()
        priors = ["uniform", "learned"]
        try:
            payload_coder(model, "context", args.context_prior)
            priors.append("context")
        except ValueError as err:
            print(f"layer {layer}: no context prior ({err})")
        row: dict[str, Any] = {
            prior: measure(model, test, prior, args.context_prior) for prior in priors
        }
        base = row["uniform"]["payload_bits_per_digit"]
        row["saved"] = {p: base - row[p]["payload_bits_per_digit"] for p in priors}
        rows[str(layer)] = row
        for prior in priors:
            r, saved = row[prior], row["saved"][prior]
            print(
                f"{layer:>5} {prior:>8} {r['bytes_per_digit']:>12.2f} "
                f"{r['payload_bits_per_digit']:>19.1f} "
                f"{r['ideal_bits_per_digit']:>17.1f}  "
                f"{saved:>10.1f} ({100 * saved / base:.1f} %)"
            )
    if args.json is not None:
        result = {
            "weights": args.weights or "shipped",
            "num_images": len(test),
            "prior": "stored" if args.keep_prior else "estimated on the training split",
            "context_prior": args.context_prior or "shipped",
            "log2_codebook": [math.log2(c.codebook_size) for c in stack.config.layers],
            "layers": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
