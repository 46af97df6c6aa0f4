#!/usr/bin/env python3
"""The k-means floor of the model card: k-means codes of MNIST pixels, scored like HQA.

For each rate b (``--bits``, default 8 32 128), fits 2^8 = 256 centroids per code
on the training digits (``compressai_hqa.baselines.kmeans``: one code for the
whole 32x32 image at 8 bits; above, a product code of 8-bit codes on HQA's code
grid at that rate: 2x2 tiles of 16x16 at 32 bits, 4x4 tiles of 8x8 at 128) and
decodes every digit to its nearest centroids. The fit uses the training split
minus its last ``--holdout`` images (the HQA stack's training data); the scores
are the model card's (``compressai_hqa.eval_model.evaluate``, as
``zoo/tools/evaluate_zoo.py`` computes them): MSE on [0, 1] floats, PSNR, the
shipped MNIST classifier's error on the decodes, and rFID against the originals
of the first ``--rfid-n`` images. Prints a table; ``-o`` writes JSON (whose
``"results"`` the ``rate-perception`` figure reads) and the table as Markdown.

    # the card's floor: all 10,000 test digits, rFID on the first 1,000
    python zoo/tools/kmeans_baseline.py --data-root ../shared/data \\
        -o zoo/results/kmeans/mnist-test.json
    # on the held-out training digits (the ablation's split), no rFID
    python zoo/tools/kmeans_baseline.py --data-root ../shared/data \\
        --eval holdout --rfid-n 0
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from compressai_hqa.baselines.kmeans import code_grid, fit_kmeans
from compressai_hqa.datasets import load_mnist
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, summary

#: Bits per code: 256 centroids per tile position.
CODE_BITS = 8


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="MNIST root")
    p.add_argument(
        "--bits",
        type=int,
        nargs="+",
        default=[8, 32, 128],
        help="bits per image: 8 times a square number (default: 8 32 128)",
    )
    p.add_argument(
        "--train-images",
        type=int,
        default=None,
        help="fit on the first N training images (default: all but the holdout)",
    )
    p.add_argument(
        "--holdout",
        type=int,
        default=5000,
        help="last training images never fitted on (default: 5000)",
    )
    p.add_argument(
        "--eval",
        choices=("test", "holdout"),
        default="test",
        help="score on the MNIST test split or the held-out training images",
    )
    p.add_argument("--num-images", type=int, default=None, help="first N only")
    p.add_argument(
        "--rfid-n", type=int, default=1000, help="rFID images, 0: none (1000)"
    )
    p.add_argument("--seed", type=int, default=0, help="k-means++ seed (0)")
    p.add_argument(
        "--max-iter", type=int, default=300, help="Lloyd iterations at most (300)"
    )
    p.add_argument(
        "--tol",
        type=float,
        default=0.0,
        help="stop at this relative decrease (0: when no assignment changes)",
    )
    p.add_argument("--batch-size", type=int, default=500, help="(default: 500)")
    p.add_argument("-o", "--output", type=Path, default=None, help="JSON to write")
    args = p.parse_args(argv)
    for bits in args.bits:
        try:
            code_grid(bits, (32, 32), CODE_BITS)
        except ValueError as e:
            p.error(f"--bits {bits}: {e}")
    for name in ("train_images", "num_images", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.holdout < 0 or args.rfid_n < 0 or args.max_iter < 0 or args.tol < 0:
        p.error("--holdout, --rfid-n, --max-iter and --tol must be >= 0")
    return args


def load_splits(args: argparse.Namespace) -> tuple[torch.Tensor, EvalImages]:
    """The training images to fit on and the images to score.

    Raises:
        FileNotFoundError: no MNIST under ``--data-root``.
        ValueError: the split sizes do not fit the training set.
    """
    train = load_mnist(args.data_root, train=True)
    fit_end = len(train) - args.holdout
    if fit_end < 1:
        raise ValueError(
            f"--holdout {args.holdout} leaves no training image of {len(train)}"
        )
    count = fit_end if args.train_images is None else args.train_images
    if count > fit_end:
        raise ValueError(
            f"--train-images {count} > the {fit_end} training images outside "
            f"the holdout"
        )
    if args.eval == "test":
        test = load_mnist(args.data_root, train=False)
        ids = tuple(f"mnist-test/{i:05d}" for i in range(len(test)))
        images = EvalImages("mnist-test", test.images, ids, test.labels)
    else:
        if args.holdout == 0:
            raise ValueError("--eval holdout needs --holdout > 0")
        ids = tuple(f"mnist-train/{i:05d}" for i in range(fit_end, len(train)))
        images = EvalImages(
            "mnist-train-holdout",
            train.images[fit_end:],
            ids,
            train.labels[fit_end:],
        )
    if args.num_images is not None:
        images = images.subset(args.num_images)
    return train.images[:count], images


def score(
    codec: torch.nn.Module,
    images: EvalImages,
    classifier: torch.nn.Module,
    batch_size: int,
    rfid_n: int = 0,
    inception: Any = None,
    reference: Any = None,
) -> dict[str, float]:
    """MSE, PSNR, class error and (with ``rfid_n``) rFID of a codec's decodes."""
    options = EvalOptions(entropy_estimation=True, batch_size=batch_size, progress=True)
    out = summary(codec, images, options, classifier, rfid_n, inception, reference)
    out["bits_counted"] = out.pop("bits")
    return out


def markdown(result: dict[str, Any]) -> str:
    """The table of one run: a row per rate."""
    n = result["rfid_n"]
    lines = [
        "| bits / image | code grid | tile | MSE | PSNR (dB) | class. error "
        f"| rFID (n={n}) | train MSE | Lloyd iterations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for bits, row in sorted(result["rates"].items(), key=lambda kv: int(kv[0])):
        rfid = f"{row['rfid']:.1f}" if "rfid" in row else "-"
        iterations = f"{row['iterations']}" + ("" if row["converged"] else " (max)")
        cells = [
            bits,
            "x".join(map(str, row["grid"])),
            "x".join(map(str, row["tile"])),
            f"{row['mse']:.4f}",
            f"{row['psnr']:.2f}",
            f"{100 * row['class_error']:.2f} %",
            rfid,
            f"{row['train_mse']:.4f}",
            iterations,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"k-means fitted on {result['train_images']} training digits (seed "
        f"{result['seed']}), scored on {result['num_images']} images "
        f"({result['dataset']})."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the script; returns what it writes as JSON."""
    args = parse_args(argv)
    try:
        train, images = load_splits(args)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"kmeans_baseline.py: error: {e}")
    from compressai_hqa.metrics.classifier import load_classifier

    classifier = load_classifier("cpu")
    rfid_n = min(args.rfid_n, len(images))
    inception = reference = None
    if rfid_n:
        from compressai_hqa.eval_model.rfid import reference_features
        from compressai_hqa.metrics.fid import FIDUnavailableError, load_inception

        try:
            inception = load_inception("cpu")
        except FIDUnavailableError as e:
            sys.exit(f"kmeans_baseline.py: error: {e} (or pass --rfid-n 0)")
        reference = reference_features(images, rfid_n, inception, progress=True)
    command = [
        "python",
        "zoo/tools/kmeans_baseline.py",
        *(sys.argv[1:] if argv is None else argv),
    ]
    result: dict[str, Any] = {
        "name": f"k-means ({2**CODE_BITS} centroids per code)",
        "command": shlex.join(command),
        "dataset": images.name,
        "num_images": len(images),
        "rfid_n": rfid_n,
        "train_images": len(train),
        "holdout": args.holdout,
        "seed": args.seed,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "code_bits": CODE_BITS,
        "rates": {},
    }
    start = time.perf_counter()
    for bits in args.bits:
        tic = time.perf_counter()
        codec, fit = fit_kmeans(
            train,
            bits,
            code_bits=CODE_BITS,
            max_iter=args.max_iter,
            tol=args.tol,
            seed=args.seed,
            progress=True,
        )
        row: dict[str, Any] = {
            "bits": bits,
            "grid": list(codec.grid),
            "tile": [32 // codec.grid[0], 32 // codec.grid[1]],
            "iterations": fit.iterations,
            "converged": fit.converged,
            "train_mse": fit.history[-1],
            "fit_s": time.perf_counter() - tic,
        }
        row.update(
            score(
                codec, images, classifier, args.batch_size, rfid_n, inception, reference
            )
        )
        row["wall_s"] = time.perf_counter() - tic
        result["rates"][str(bits)] = row
        brief = {
            k: round(row[k], 5) for k in ("mse", "class_error", "rfid") if k in row
        }
        print(f"{bits} bits: {json.dumps(brief)} ({row['wall_s']:.0f} s)", flush=True)
    result["wall_s"] = time.perf_counter() - start
    rows = sorted(result["rates"].values(), key=lambda r: r["bits"])
    result["results"] = {
        "bits": [r["bits"] for r in rows],
        "bpp": [r["bits"] / 1024 for r in rows],
        "mse": [r["mse"] for r in rows],
        "class-error": [r["class_error"] for r in rows],
        "rfid": [r.get("rfid") for r in rows],
    }
    table = markdown(result)
    print(table)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(table + "\n")
    return result


if __name__ == "__main__":
    main()
