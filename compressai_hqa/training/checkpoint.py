"""Training checkpoints: atomic writes, plain values only (``weights_only=True``)."""

from __future__ import annotations

import os
import tempfile

from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint"]

FORMAT = "compressai_hqa.train/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the run."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """Writes ``obj`` with ``torch.save`` to a temporary file, then renames it.

    A kill at any moment leaves either the previous file or the new one, never a
    partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a training checkpoint or a bare HQA state dict (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure means a corrupt file
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not an HQA checkpoint")
    if "state_dict" not in obj:  # a bare model state dict
        obj = {"state_dict": obj}
    if "_extra_state" not in obj["state_dict"]:
        raise CheckpointError(f"{path} is not an HQA checkpoint (no model config)")
    return obj
