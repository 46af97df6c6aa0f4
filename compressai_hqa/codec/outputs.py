"""The outputs of ``compressai-hqa``: a ``.hqa`` file, or a folder of PNG images.

Nothing is written unless the whole job succeeds: a file goes to a temporary
name and is renamed into place (:func:`compressai_hqa.files.atomic_write`), the
images of a folder are written to a temporary folder whose files move into place
only at the end (:func:`staging`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from compressai_hqa.commands import UsageError
from compressai_hqa.files import atomic_write, new_file_mode

__all__ = [
    "check_output_dir",
    "check_output_file",
    "image_names",
    "staging",
    "write_output",
]


def image_names(count: int) -> list[str]:
    """``00000.png``, ``00001.png``, ... (at least five digits)."""
    width = max(5, len(str(count - 1)))
    return [f"{i:0{width}d}.png" for i in range(count)]


def check_output_file(spec: str, force: bool) -> None:
    """Raises UsageError if ``spec`` is a folder or, without ``force``, exists."""
    if spec != "-" and Path(spec).is_dir():
        raise UsageError(f"{spec} is a folder; -o names the .hqa file")
    if spec != "-" and Path(spec).exists() and not force:
        raise UsageError(f"{spec} exists; pass --force to overwrite it")


def write_output(spec: str, data: bytes, force: bool) -> None:
    """Writes ``data`` to stdout or atomically (temporary file + rename).

    Raises:
        OSError: the file system refused; for stdout (a full disk, a closed
            pipe) with a message naming it, and stdout is then sent to
            ``/dev/null`` so that the interpreter's last flush stays silent.
    """
    if spec == "-":
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError as err:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
            reason = err.strerror or type(err).__name__
            raise OSError(err.errno, f"cannot write to stdout: {reason}") from None
        return
    check_output_file(spec, force)
    atomic_write(spec, data)


def check_output_dir(out_dir: Path, names: Sequence[str], force: bool) -> None:
    """Raises UsageError if ``out_dir`` is a file or, without ``force``, if it
    holds a file of ``names``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and not force:
        clashes = [n for n in names if (out_dir / n).exists()]
        if clashes:
            n = len(clashes)
            verb = "exists" if n == 1 else "exist"
            raise UsageError(
                f"{out_dir / clashes[0]} exists ({n} of the {len(names)} outputs "
                f"{verb}); pass --force to overwrite"
            )


@contextmanager
def staging(out_dir: Path, force: bool) -> Iterator[Path]:
    """A temporary folder whose files move into ``out_dir`` only on success."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent)
    )
    try:
        yield tmp
        if not out_dir.exists():
            os.chmod(tmp, new_file_mode(folder=True))  # mkdtemp's folder is private
            os.replace(tmp, out_dir)
            return
        for item in sorted(tmp.iterdir()):
            target = out_dir / item.name
            if target.exists() and not force:
                raise UsageError(f"{target} appeared meanwhile; nothing replaced")
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
