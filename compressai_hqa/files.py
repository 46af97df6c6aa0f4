"""Files: atomic writes, digests, verified loading of PyTorch files, the cache.

Every file the package writes (checkpoints, weights, ``.hqa`` files, dataset and
feature caches) goes through :func:`atomic_write`, every PyTorch file it reads
through :func:`load_torch_file` (``weights_only=True``, optionally digest-checked),
and every cached copy lives below :func:`cache_dir`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

__all__ = [
    "atomic_save",
    "atomic_write",
    "cache_dir",
    "check_digest",
    "file_digest",
    "load_torch_file",
    "new_file_mode",
]


def cache_dir() -> Path:
    """Where decompressed datasets, converted weights and features are cached.

    ``$COMPRESSAI_HQA_CACHE``, else ``$XDG_CACHE_HOME/compressai_hqa`` (default
    ``~/.cache/compressai_hqa``).
    """
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("COMPRESSAI_HQA_CACHE", default / "compressai_hqa"))


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], Any]) -> None:
    """Writes a file through a temporary file in its folder, then renames it.

    A kill at any moment leaves either the previous file or the new one, never a
    partial file; the data is on disk (``fsync``) before the rename. The file gets
    the permissions of a newly created file (``0o666`` less the umask).

    Args:
        path: the file; its folder is created if needed.
        data: the bytes, or a function that writes them to a binary file object.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode())  # mkstemp's file is private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` with :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """The hexadecimal digest of a file (``"sha256"``, ``"sha1"``, ...)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(path: str | Path, expected: str, algorithm: str = "sha256") -> None:
    """Raises RuntimeError unless the file's digest is ``expected``."""
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise RuntimeError(
            f"{path} is corrupt or not the released file: {algorithm.upper()} "
            f"{actual} != expected {expected}"
        )


def load_torch_file(path: str | Path, sha256: str | None = None) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, errors in one line.

    Args:
        path: a file written by ``torch.save`` holding tensors and plain values.
        sha256: when given, the file's SHA-256 must be this.

    Raises:
        FileNotFoundError: no such file.
        RuntimeError: the file's SHA-256 is not ``sha256``.
        ValueError: the file is not a readable PyTorch file of tensors and plain
            values (truncated, another format, pickled code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if sha256 is not None:
        check_digest(path, sha256)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(_TORCH_MAGICS):
        raise ValueError(
            f"cannot read checkpoint {path}: not a PyTorch file (torch.save writes "
            "a zip archive or, before PyTorch 1.6, a pickle)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip, pickle, EOF and runtime errors of torch.load
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"cannot read checkpoint {path}: {reason}") from None


# First bytes of torch.save's files: a zip archive, or a pickle (protocol >= 2).
_TORCH_MAGICS = (b"PK\x03\x04", b"\x80")


def new_file_mode(folder: bool = False) -> int:
    """The permissions of a new file (``0o666``) or folder (``0o777``) less the
    umask (temporary files and folders are created private)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if folder else 0o666) & ~mask
