"""``compressai-hqa``: compress images to ``.hqa`` files, decompress them, inspect them.

Usage::

    compressai-hqa compress IMAGES... -o OUT.hqa [--model hqa-mnist] [--layer 5]
        [--weights PATH] [--prior uniform|learned|context] [--context-prior PATH]
        [--resize] [--device cpu|cuda] [--max-memory 1G] [--force] [--quiet]
    compressai-hqa decompress OUT.hqa -o DIR [--decode argmin|sample|average|mmse]
        [--seed N] [--temperature T] [--num-samples N] [--weights PATH]
        [--context-prior PATH] [--mmse PATH] [--device cpu|cuda] [--max-memory 1G]
        [--force] [--quiet]
    compressai-hqa info OUT.hqa [--json]
    compressai-hqa --version

Sources are image files, folders (searched recursively), glob patterns, MNIST
IDX files (``*-idx3-ubyte``, gzipped or not) or ``-`` (one image or IDX file
on stdin); ``-o -`` writes to stdout, which then carries nothing but the file.
Exit status: 0 on success, 1 for a usage error (bad option, missing input,
existing output without ``--force``, weights that do not fit the file), 2 for
bad data (a corrupt or newer ``.hqa`` file, an unreadable image or IDX file,
images or files that would need more memory than ``--max-memory``), 130 when
interrupted; errors are one line on stderr. Nothing is written unless the whole
job succeeds: files go to a temporary name first and are renamed into place.

This module imports nothing heavy: the console script (``_compressai_hqa_cli``)
loads it without importing the package, so that ``--help``, ``--version`` and
usage errors need neither torch nor CompressAI. What the commands do is
:mod:`compressai_hqa.codec.commands`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

__all__ = [
    "COLOR_MODES",
    "DECODE_CHOICES",
    "EXIT_DATA",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "PRIOR_CHOICES",
    "build_parser",
    "main",
    "parse_bytes",
    "run",
    "version",
]

PROG = "compressai-hqa"
# The package's constants, repeated here so that parsing imports nothing
# (tests/test_codec_hygiene.py and tests/test_commands.py check that they agree):
# the exit statuses of compressai_hqa.commands, codec.format.PRIOR_IDS,
# decoding.DECODE_MODES and datasets.COLOR_MODES.
EXIT_USAGE = 1
EXIT_DATA = 2
EXIT_INTERRUPTED = 130
PRIOR_CHOICES = ("uniform", "learned", "context")
DECODE_CHOICES = ("argmin", "sample", "average", "mmse")
COLOR_MODES = ("L", "RGB")
_DEFAULT_MAX_MEMORY = "1G"  # codec.batching.DEFAULT_MAX_MEMORY
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 1 and a one-line message for usage errors (as
    :class:`compressai_hqa.commands.CommandParser`, without importing the
    package)."""

    def error(self, message: str) -> NoReturn:
        fail(EXIT_USAGE, message + f" (see {PROG} --help)")


def fail(status: int, message: str) -> NoReturn:
    """Prints ``compressai-hqa: error: message`` in one line and exits."""
    text = " ".join(str(message).split())
    print(f"{PROG}: error: {text}", file=sys.stderr)
    raise SystemExit(status)


def version() -> str:
    """The package version, read from ``version.py`` beside this package."""
    namespace: dict = {}
    exec((Path(__file__).resolve().parents[1] / "version.py").read_text(), namespace)
    return namespace["__version__"]


def parse_bytes(text: str) -> int:
    """A byte count: ``123``, ``512M``, ``1.5G``, ``2GiB``, ``1T`` (powers of 1024).

    Raises:
        argparse.ArgumentTypeError: not a positive size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.I)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 2G)")
    count = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if count < 1:
        raise argparse.ArgumentTypeError(f"the size must be positive, got {text!r}")
    return count


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= seed < 1 << 64:
        raise argparse.ArgumentTypeError(f"must be in [0, 2^64), got {text}")
    return seed


def build_parser() -> argparse.ArgumentParser:
    """The ``compressai-hqa`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Compress images with a Hierarchical Quantized Autoencoder "
        "into .hqa files (one entropy-coded payload for all images).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("compress", help="images -> one .hqa file")
    c.add_argument(
        "sources",
        nargs="+",
        metavar="IMAGES",
        help="image files (8-bit, 16-bit or float), folders (recursive), glob "
        "patterns, MNIST IDX files (gzipped or not), or - for one image or IDX "
        "file on stdin",
    )
    c.add_argument(
        "-o", "--output", required=True, help="the .hqa file, or - for stdout"
    )
    c.add_argument(
        "--model",
        default=None,
        help="model name (hqa-mnist, hqa-celeba64, or hqa-<config> of --weights); "
        "default: the config of --weights, else hqa-mnist",
    )
    c.add_argument(
        "--layer",
        type=int,
        default=None,
        help="the layer whose codes are stored (1 = highest rate; default: the top)",
    )
    c.add_argument(
        "--prior",
        choices=PRIOR_CHOICES,
        default="uniform",
        help="entropy model: uniform (bit-packed, log2 K bits per code; default), "
        "learned (the weights' static code prior, rANS) or context (each code "
        "predicted from the codes before it, rANS)",
    )
    c.add_argument(
        "--color-mode",
        choices=COLOR_MODES,
        default=None,
        help="convert images to 1 (L) or 3 (RGB) channels; by default images "
        "keep their channels, which must be the model's",
    )
    c.add_argument(
        "--resize",
        action="store_true",
        help="resize every image to the model's training size (32x32 for "
        "hqa-mnist; bilinear, antialiased, as MNIST's 28x28 digits are in "
        "training); without it images are coded at their own size, with a "
        "warning when that differs",
    )
    c.add_argument(
        "--idx-size",
        type=int,
        default=32,
        metavar="N",
        help="resize square IDX images to N pixels as the MNIST zoo models expect "
        "(bilinear, antialiased; default: %(default)s; 0 keeps them as stored)",
    )
    d = sub.add_parser("decompress", help="one .hqa file -> PNG images")
    d.add_argument("input", metavar="FILE", help="the .hqa file, or - for stdin")
    d.add_argument(
        "-o",
        "--output",
        required=True,
        help="folder for the PNG images (00000.png, ...), or - to write the PNG "
        "of a one-image file to stdout",
    )
    d.add_argument(
        "--decode",
        choices=DECODE_CHOICES,
        default="argmin",
        help="how lower layers re-quantise (compressai_hqa.decoding; default: "
        "%(default)s, deterministic: the PNGs are a function of the file, the "
        "weights and this machine; sample: a seeded draw from each posterior; "
        "average: the mean of --num-samples such decodes; mmse: the MMSE "
        "decoder of the file's layer, least squared error, deterministic)",
    )
    d.add_argument(
        "--mmse",
        default=None,
        metavar="PATH",
        help="MMSE decoders of --weights for --decode mmse (from python -m "
        "compressai_hqa.training.mmse; the shipped weights bring their own)",
    )
    d.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of stochastic decoding, in [0, 2^64) (a CPU generator; "
        "default: %(default)s)",
    )
    d.add_argument(
        "--num-samples",
        type=int,
        default=8,
        help="decodes averaged by --decode average (default: %(default)s)",
    )
    d.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="stochastic decodes draw from each posterior's logits divided by "
        "this: 1 is the posterior itself (the paper), above 1 flatter, more "
        "varied decodes (default: %(default)s)",
    )
    for p in (c, d):
        p.add_argument(
            "--weights",
            default=None,
            metavar="PATH",
            help="a state dict or training checkpoint (a path or URL) instead of "
            "the shipped weights of the model",
        )
        p.add_argument(
            "--context-prior",
            default=None,
            metavar="PATH",
            help="the context prior file of --weights (default: the shipped one)",
        )
        p.add_argument(
            "--device",
            default="cpu",
            help="cpu (default), cuda or cuda:N",
        )
        p.add_argument(
            "--max-memory",
            type=parse_bytes,
            default=_DEFAULT_MAX_MEMORY,
            metavar="SIZE",
            help="refuse images (compress) or files (decompress) whose coding "
            "would need more memory than this, estimated before anything is "
            "allocated; large images are coded fewer at a time (e.g. 512M, 4G; "
            "default: %(default)s)",
        )
        p.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)
        p.add_argument(
            "-f",
            "--force",
            action="store_true",
            help="overwrite existing outputs"
            + ("; decode with weights other than the file's" if p is d else ""),
        )
        p.add_argument(
            "-q", "--quiet", action="store_true", help="no progress bar, no summary"
        )
    i = sub.add_parser("info", help="describe a .hqa file")
    i.add_argument("input", metavar="FILE", help="the .hqa file, or - for stdin")
    i.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0) or raises SystemExit."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Runs a parsed command; errors become one line on stderr and an exit status.

    Raises:
        SystemExit: with :data:`EXIT_USAGE`, :data:`EXIT_DATA` or
            :data:`EXIT_INTERRUPTED` (Ctrl-C, also while torch is imported).
    """
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None


@contextlib.contextmanager
def _interrupt_ends_imports() -> Iterator[None]:
    """Ctrl-C during the heavy imports ends the process at once with
    :data:`EXIT_INTERRUPTED`: third-party import code may catch the
    ``KeyboardInterrupt`` (a bare ``except``), and nothing is written yet."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: object) -> None:
        os.write(2, f"{PROG}: interrupted\n".encode())
        os._exit(EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGINT, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(args: argparse.Namespace) -> int:
    with _interrupt_ends_imports():
        from compressai_hqa.codec import commands
        from compressai_hqa.codec.api import MemoryLimitError, WeightsMismatchError
        from compressai_hqa.commands import run_command

    run_command(
        lambda: getattr(commands, args.command)(args),
        PROG,
        usage=(WeightsMismatchError,),
        data=(MemoryLimitError,),
    )
    return 0
