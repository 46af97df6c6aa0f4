"""Command line of ``python -m compressai_hqa.training.mmse``.

``train`` fits one layer's decoder (resumable), ``export`` writes the chosen
layers' decoders to one weights file, ``evaluate`` compares a weights file
with argmin decoding on the held-out training digits and the test digits.
"""

from __future__ import annotations

import argparse
import json

from collections.abc import Sequence
from pathlib import Path

from compressai_hqa.commands import CommandParser, run_command
from compressai_hqa.datasets import load_mnist
from compressai_hqa.files import atomic_write, load_torch_file
from compressai_hqa.metrics.classifier import load_classifier
from compressai_hqa.models.mmse import KINDS, MMSEDecoders, MMSESpec

from .evaluate import evaluate_layer
from .loop import export, load_stack, train_layer
from .settings import MMSESettings

__all__ = ["PROG", "build_parser", "main"]

PROG = "python -m compressai_hqa.training.mmse"

EPILOG = """\
examples:
  # layer 4: fine-tune the decoding path for pixel MSE (resumable)
  python -m compressai_hqa.training.mmse train --layer 4 --kind path \\
      --steps 3000 --data-root ../shared/data --output runs/mmse
  python -m compressai_hqa.training.mmse train --layer 4 --kind path \\
      --steps 3000 --data-root ../shared/data --output runs/mmse --resume
  # layer 5: the table of conditional means (no training)
  python -m compressai_hqa.training.mmse train --layer 5 --kind table \\
      --data-root ../shared/data --output runs/mmse
  # one weights file, then its held-out and test numbers
  python -m compressai_hqa.training.mmse export runs/mmse/layer*-*/model.pth \\
      -o mmse.pth
  python -m compressai_hqa.training.mmse evaluate --mmse mmse.pth \\
      --data-root ../shared/data --json mmse-eval.json
"""


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog=PROG,
        description="MMSE (distortion-end) decoders of a frozen HQA stack: "
        "pixels from a layer's argmin codes, fitted for pixel MSE.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit one layer's decoder")
    t.add_argument("--data-root", required=True, help="folder holding MNIST/raw/")
    t.add_argument("--output", required=True, help="run folder")
    t.add_argument("--layer", type=int, required=True)
    t.add_argument("--kind", choices=KINDS, default="path")
    t.add_argument("--width", type=int, default=128, help="first width of a net")
    t.add_argument("--weights", default=None, help="stack (default: shipped)")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--final-lr-ratio", type=float, default=0.01)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--holdout", type=int, default=5000)
    t.add_argument("--eval-every", type=int, default=250)
    t.add_argument("--log-every", type=int, default=25)
    t.add_argument("--checkpoint-every", type=int, default=100)
    t.add_argument("--resume", action="store_true", help="continue the checkpoint")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e = sub.add_parser("export", help="write decoders of runs to one file")
    e.add_argument("models", nargs="+", help="model.pth files of runs")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--weights", default=None, help="stack (default: shipped)")
    e.add_argument("--float32", action="store_true", help="keep float32 tensors")
    v = sub.add_parser("evaluate", help="MSE and class error against argmin")
    v.add_argument("--data-root", required=True)
    v.add_argument("--mmse", default=None, help="decoders (default: shipped)")
    v.add_argument("--weights", default=None, help="stack (default: shipped)")
    v.add_argument("--holdout", type=int, default=5000)
    v.add_argument("--json", default=None, help="write the results here")
    return p


def _train(args: argparse.Namespace) -> None:
    settings = MMSESettings(
        data_root=args.data_root,
        output=args.output,
        layer=args.layer,
        spec=MMSESpec(args.kind, args.width),
        weights=args.weights,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        final_lr_ratio=args.final_lr_ratio,
        seed=args.seed,
        holdout=args.holdout,
        eval_every=args.eval_every,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        progress=not args.quiet,
    )
    metrics = train_layer(settings)
    print(
        f"layer {metrics['layer']} {args.kind}: held-out MSE "
        f"{metrics['heldout_mse']:.5f} (argmin {metrics['heldout_mse_argmin']:.5f})"
    )


def _evaluate(args: argparse.Namespace) -> dict:
    stack = load_stack(args.weights)
    if args.mmse is None:
        from compressai_hqa.zoo.mmse import pretrained_mmse

        decoders = pretrained_mmse(stack)
    else:
        decoders = MMSEDecoders.from_state_dict(stack, load_torch_file(args.mmse))
    size = stack.config.image_size
    train = load_mnist(args.data_root, train=True, size=size)
    test = load_mnist(args.data_root, train=False, size=size)
    splits = {
        "heldout": (train.images[-args.holdout :], train.labels[-args.holdout :]),
        "test": (test.images, test.labels),
    }
    classifier = load_classifier()
    results: dict = {"holdout": args.holdout, "layers": {}}
    for layer in decoders.layers:
        entry = results["layers"][str(layer)] = {"kind": decoders.specs[layer].kind}
        for split, (images, labels) in splits.items():
            r = evaluate_layer(stack, decoders, layer, images, labels, classifier)
            entry["bits"] = r["bits"]
            entry[split] = {"argmin": r["argmin"], "mmse": r["mmse"]}
            a, m = r["argmin"], r["mmse"]
            print(
                f"layer {layer} ({r['bits']} bits) {split}: MSE {m['mse']:.5f} "
                f"(argmin {a['mse']:.5f}, {m['mse'] / a['mse'] - 1:+.1%}), class "
                f"error {m['class_error']:.2%} (argmin {a['class_error']:.2%})"
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns 0.

    Raises:
        SystemExit: an error, printed in one line, with the exit status of
            :mod:`compressai_hqa.commands` (1: usage, 2: bad data, 130).
    """
    args = build_parser().parse_args(argv)
    run_command(
        lambda: _run(args), PROG, usage=(FileExistsError, FileNotFoundError, ValueError)
    )
    return 0


def _run(args: argparse.Namespace) -> None:
    if args.command == "train":
        _train(args)
    elif args.command == "export":
        stack = load_stack(args.weights)
        model = export(stack, args.models, args.output, half=not args.float32)
        size = Path(args.output).stat().st_size
        print(f"{args.output}: layers {model.layers}, {size} bytes")
    else:
        results = _evaluate(args)
        if args.json:
            text = json.dumps(results, indent=2) + "\n"
            atomic_write(args.json, text.encode())
