"""``python -m compressai_hqa.eval_model``: CompressAI's eval_model, for HQA too.

The command line is CompressAI's (``pretrained -q ...`` or ``checkpoint -p ...``,
``-a``, ``-m``, ``-c``, ``--cuda``, ``--half``, ``--entropy-estimation``, ``-d``,
``-o``, ``--per-image``, ``-v``) and so is the JSON it writes (``name``,
``description`` and ``results`` with one entry per quality or checkpoint for
``psnr-rgb``, ``ms-ssim-rgb``, ``bpp``, ``encoding_time``, ``decoding_time``), so
``python -m compressai.utils.plot`` plots HQA beside CompressAI's codecs. Added:

* the dataset may be a folder or ``FAMILY:ROOT``, ``ROOT`` read by a model
  family's dataset transform (``mnist:<root>``: the 10k test split, 32x32, 1
  channel); images keep their own channels (``--color-mode`` converts);
* ``mse`` (on [0, 1] floats) and ``bits`` (per image) are always reported;
  ``ms-ssim-rgb`` is null, with a note, for images too small for MS-SSIM;
* ``--rfid`` adds ``rfid`` and ``rfid-n``, ``--classifier`` adds ``class-error``;
* ``--decode`` (one of :data:`compressai_hqa.decoding.DECODE_MODES`), ``--seed``,
  ``--num-samples`` and ``--temperature`` for HQA's stochastic decoding,
  ``--sample-top`` to draw the top code too (Algorithm 3 in full);
  ``--batch-size`` and ``--num-images``.

This module parses the arguments; :func:`compressai_hqa.eval_model.run.run` runs
the evaluation they describe.

Example::

    python -m compressai_hqa.eval_model checkpoint mnist:../shared/data -a hqa \\
        -p hqa-mnist.pth.tar --rfid --classifier -d results -o hqa-mnist.json
"""

from __future__ import annotations

import argparse
import sys

from collections.abc import Sequence
from typing import Any

import torch

from compressai_hqa.commands import EXIT_USAGE, fail, parse_args, run_command
from compressai_hqa.datasets import COLOR_MODES
from compressai_hqa.decoding import DECODE_MODES
from compressai_hqa.eval_model.run import MNIST_BATCH_SIZE, run

__all__ = ["PROG", "main", "setup_args"]

PROG = "python -m compressai_hqa.eval_model"


def setup_args() -> argparse.ArgumentParser:
    """CompressAI's eval_model parser with the HQA options added to both modes."""
    parser = _compressai_parser()
    parser.prog = PROG
    parser.description = (
        "Evaluate a model on an image dataset (CompressAI's eval_model, with HQA, "
        "MNIST, rFID and class-error)."
    )
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name in ("pretrained", "checkpoint"):
        _add_options(subparsers.choices[name])
    return parser


def _add_options(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.dest == "dataset":
            action.help = (
                "dataset: a folder of images (searched recursively), or "
                "FAMILY:ROOT read as model family FAMILY reads its data: "
                "mnist:<root> for the 10k MNIST test split (<root>/MNIST/raw/)"
            )
    group = parser.add_argument_group("compressai_hqa options")
    group.add_argument(
        "--color-mode",
        choices=COLOR_MODES,
        default=None,
        help="convert the images to PIL mode L (1 channel) or RGB; by default "
        "images keep their channels and must match the model's",
    )
    group.add_argument(
        "--num-images",
        type=int,
        default=None,
        metavar="N",
        help="evaluate the first N images only (default: all)",
    )
    group.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"images per batch (default: {MNIST_BATCH_SIZE} for MNIST, 1 for "
        "folders; images of different sizes always go one by one)",
    )
    group.add_argument(
        "--decode",
        choices=DECODE_MODES,
        default="argmin",
        help="HQA decoding mode (compressai_hqa.decoding; default: "
        "%(default)s, deterministic; average: the mean of --num-samples "
        "stochastic decodes; mmse: the MMSE decoder of the layer, least squared "
        "error)",
    )
    group.add_argument(
        "--mmse",
        default=None,
        metavar="PATH",
        help="HQA: MMSE decoders of the checkpoints for --decode mmse (from "
        "python -m compressai_hqa.training.mmse; the pretrained models bring "
        "their own)",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="seed of stochastic decoding (default: 0)"
    )
    group.add_argument(
        "--num-samples",
        type=int,
        default=8,
        help="decodes averaged by --decode average (default: %(default)s)",
    )
    group.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="HQA: stochastic decodes draw from each posterior's logits divided by "
        "this; 1 is the posterior itself (the paper), above 1 flatter (default: "
        "%(default)s)",
    )
    group.add_argument(
        "--sample-top",
        action="store_true",
        help="HQA: also draw the top code from its posterior (the paper's "
        "Algorithm 3 in full); the rate is that of the transmitted argmin code",
    )
    group.add_argument(
        "--prior",
        choices=("uniform", "learned", "context"),
        default="uniform",
        help="HQA entropy model: uniform (per-image rANS streams, the paper's "
        "rate; default), learned or context: each batch is one .hqa file and the "
        "bits are its real bytes shared by its images",
    )
    group.add_argument(
        "--rfid",
        action="store_true",
        help="add rfid: FID between reconstructions and originals (pytorch-fid "
        "Inception; needs the [fid] extra, no download)",
    )
    group.add_argument(
        "--rfid-n",
        type=int,
        default=None,
        metavar="N",
        help="rFID on the first N images (default: all; FID is biased at small N, "
        "compare only equal N)",
    )
    group.add_argument(
        "--classifier",
        action="store_true",
        help="add class-error: error of the shipped MNIST classifier on the "
        "reconstructions (MNIST only)",
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the evaluation; returns (and prints) CompressAI's JSON.

    Raises:
        SystemExit: an error, printed in one line, with the exit status of
            :mod:`compressai_hqa.commands` (1: usage, 2: bad data, 130).
    """
    parser = setup_args()
    args = parse_args(parser, sys.argv[1:] if argv is None else argv, PROG)
    if args.source not in ("checkpoint", "pretrained"):
        fail(PROG, EXIT_USAGE, f"missing 'checkpoint' or 'pretrained' (see {PROG} -h)")
    return run_command(lambda: run(args), PROG)


def _compressai_parser() -> argparse.ArgumentParser:
    """CompressAI's parser, HQA registered, without CompressAI's import side effects.

    Importing ``compressai.utils.eval_model.__main__`` sets one CPU thread and
    deterministic cuDNN; both are restored.
    """
    import compressai_hqa

    compressai_hqa.register()
    threads = torch.get_num_threads()
    deterministic = torch.backends.cudnn.deterministic
    from compressai.utils.eval_model import __main__ as compressai_eval

    torch.set_num_threads(threads)
    torch.backends.cudnn.deterministic = deterministic
    return compressai_eval.setup_args()


if __name__ == "__main__":
    main()
