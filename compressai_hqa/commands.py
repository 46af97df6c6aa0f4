"""What every command line of the package shares: errors, exit codes, device, weights.

The package's commands (``compressai-hqa``, ``python -m compressai_hqa.eval_model``,
``python -m compressai_hqa.figures``, ``python -m compressai_hqa.training`` and its
``mmse`` trainer, ``python -m compressai_hqa.demo``) parse their arguments with
:class:`CommandParser` and run through :func:`run_command`, which turns an error
into one line on stderr (``PROG: error: ...``) and one of these exit statuses:

====  ======================================================================
code  meaning
====  ======================================================================
0     success
1     usage: a bad option or argument, a missing input file, an existing
      output that may not be overwritten, weights that do not fit
      (:class:`UsageError`, ``FileNotFoundError`` and other ``OSError``)
2     bad data: a corrupt or unreadable file (``.hqa``, image, IDX file,
      checkpoint), inputs over the memory budget (:class:`DataError`,
      :class:`~compressai_hqa.CorruptStreamError` and what each command adds)
130   interrupted (Ctrl-C)
====  ======================================================================

An unexpected exception is a bug: it is not caught, and Python prints its
traceback (exit status 1). This module imports nothing heavy at import time (no
torch): the ``compressai-hqa`` launcher answers ``--help`` without torch.
"""

from __future__ import annotations

import argparse
import io
import sys

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr
from typing import Any, NoReturn, TypeVar

__all__ = [
    "EXIT_DATA",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandExit",
    "CommandParser",
    "DataError",
    "UsageError",
    "attach_mmse_decoders",
    "cuda_or_cpu",
    "fail",
    "load_state_dict",
    "parse_args",
    "progress_bar",
    "resolve_device",
    "run_command",
]

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_DATA = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")


class UsageError(Exception):
    """A problem with the command line or its inputs (exit status 1)."""


class DataError(Exception):
    """Unreadable or corrupt input data (exit status 2)."""


class CommandExit(SystemExit):
    """The exit of a failed command: ``code`` is its status, ``str()`` the line
    printed after ``PROG: `` (``error: ...``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status)
        self.message = message

    def __str__(self) -> str:
        return f"error: {self.message}"


def fail(prog: str, status: int, message: object) -> NoReturn:
    """Prints ``PROG: error: message`` as one line on stderr and exits.

    Args:
        prog: the command's name.
        status: the exit status (see the module's table).
        message: what went wrong; newlines and runs of spaces become one space.

    Raises:
        CommandExit: always, with ``status``.
    """
    text = " ".join(str(message).split())
    print(f"{prog}: error: {text}", file=sys.stderr)
    raise CommandExit(status, text)


class CommandParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit status 1."""

    def error(self, message: str) -> NoReturn:
        """Prints the usage error as one line and exits with :data:`EXIT_USAGE`."""
        fail(self.prog, EXIT_USAGE, f"{message} (see {self.prog} --help)")


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str], prog: str
) -> argparse.Namespace:
    """``parser.parse_args(argv)`` for a parser built by another package
    (CompressAI's): its usage errors become one line and :data:`EXIT_USAGE`, as a
    :class:`CommandParser`'s. Help and version go to stdout as usual.

    Raises:
        CommandExit: a usage error, after its line is printed.
    """
    buffer = io.StringIO()
    try:
        with redirect_stderr(buffer):
            return parser.parse_args(list(argv))
    except SystemExit as exit_:
        if not exit_.code:  # --help
            sys.stderr.write(buffer.getvalue())
            raise
        lines = buffer.getvalue().strip().splitlines() or ["bad arguments"]
        message = lines[-1].split(": error: ", 1)[-1]
        fail(prog, EXIT_USAGE, f"{message} (see {prog} --help)")


def run_command(
    command: Callable[[], T],
    prog: str,
    usage: tuple[type[BaseException], ...] = (),
    data: tuple[type[BaseException], ...] = (),
) -> T:
    """Runs ``command()``; its errors become one line on stderr and an exit status.

    Args:
        command: what the command does, once its arguments are parsed.
        prog: the command's name, the prefix of the error line.
        usage: further exception types meaning a usage error (exit status 1).
        data: further exception types meaning bad data (exit status 2); the
            usage types are checked first (a usage type may subclass a data
            type, as the codec's ``WeightsMismatchError`` does).

    Returns:
        What ``command`` returns.

    Raises:
        CommandExit: with :data:`EXIT_USAGE`, :data:`EXIT_DATA` or
            :data:`EXIT_INTERRUPTED`, after the line is printed.
    """
    from compressai_hqa.errors import CorruptStreamError

    try:
        return command()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise CommandExit(EXIT_INTERRUPTED, "interrupted") from None
    except (UsageError, *usage) as err:
        fail(prog, EXIT_USAGE, err)
    except (DataError, CorruptStreamError, *data) as err:
        fail(prog, EXIT_DATA, err)
    except OSError as err:  # a missing file, permissions, a full disk, ...
        reason = err.strerror or str(err) or type(err).__name__
        fail(prog, EXIT_USAGE, f"{err.filename}: {reason}" if err.filename else reason)


def resolve_device(spec: str) -> Any:
    """A ``--device`` value as a torch device: the CPU or an available CUDA device.

    Raises:
        UsageError: an unknown or unsupported device, or CUDA that is missing.
    """
    import torch

    try:
        target = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"unknown device {spec!r} (cpu, cuda or cuda:N)") from None
    if target.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device {spec!r} (cpu, cuda or cuda:N)")
    if target.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {spec}: CUDA is not available")
        if target.index is not None and target.index >= count:
            raise UsageError(f"--device {spec}: there are {count} CUDA devices")
    return target


def cuda_or_cpu(cuda: bool) -> Any:
    """The device of a ``--cuda`` flag: CUDA if asked and available, else the CPU
    (with a warning on stderr when CUDA was asked for)."""
    import torch

    if cuda and not torch.cuda.is_available():
        print("warning: CUDA is not available, running on CPU", file=sys.stderr)
    return torch.device("cuda" if cuda and torch.cuda.is_available() else "cpu")


def attach_mmse_decoders(
    model: Any, path: str | None, shipped: bool, mode: str
) -> None:
    """Gives ``model`` the MMSE decoders of ``path`` (``--mmse``), or the shipped
    ones when ``shipped``, and checks that ``mode`` can decode with them.

    Raises:
        UsageError: no decoders for the model's top layer, or ones that do not fit.
    """
    from compressai_hqa.zoo.mmse import attach_mmse

    try:
        attach_mmse(model, path, shipped=shipped)
        model.mmse_decoders(mode)
    except ValueError as err:
        raise UsageError(f"{err} (here: --mmse PATH)") from None


def load_state_dict(weights: str | None, family: str | None = None) -> dict:
    """An HQA state dict: a weights file or training checkpoint (a path or URL), or
    the shipped weights of a model family.

    Args:
        weights: the file; None for the shipped weights of ``family``.
        family: a model family (:data:`compressai_hqa.families.FAMILIES`);
            None: ``"mnist"``.

    Raises:
        UsageError: a missing file, or no shipped weights for ``family``.
        DataError: an unreadable file.
    """
    from compressai_hqa.zoo import PretrainedUnavailableError
    from compressai_hqa.zoo.pretrained import load_weights, pretrained_state_dict

    try:
        if weights is not None:
            return load_weights(weights, progress=False)
        return pretrained_state_dict(family or "mnist", progress=False)
    except (FileNotFoundError, PretrainedUnavailableError) as err:
        hint = "; pass --weights" if weights is None else ""
        raise UsageError(f"{err}{hint}") from None
    except ValueError as err:
        raise DataError(str(err)) from None


@contextmanager
def progress_bar(total: int, quiet: bool, what: str) -> Iterator[Any]:
    """A tqdm bar on stderr, shown only on a terminal, for more than one item and
    without ``quiet``."""
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty() or total < 2
    with tqdm(total=total, unit="img", desc=what, disable=disable, leave=False) as bar:
        yield bar
