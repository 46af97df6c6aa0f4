"""Loading trained HQA weights: shipped files (SHA-256 pinned), paths and URLs."""

from __future__ import annotations

import hashlib

from importlib import resources
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "PRETRAINED",
    "PretrainedUnavailableError",
    "load_weights",
    "pretrained_state_dict",
    "read_checkpoint",
    "sha256sum",
    "shipped_weights_path",
]

# config name -> (file inside the package's ``zoo`` data folder, SHA-256 of the file)
PRETRAINED: dict[str, tuple[str, str]] = {
    # paper Table 10 widths; trained as zoo/README.md says
    "mnist": (
        "hqa-mnist-1f410e3c.pth",
        "1f410e3c398c80cfe1e67b78aa17861e5a8d84f72909ffc5722e549cddaab299",
    ),
}


class PretrainedUnavailableError(RuntimeError):
    """No trained weights are shipped for the requested config."""


def sha256sum(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, errors in one line.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable PyTorch file of tensors and plain
            values (truncated, another format, pickled code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip, pickle, EOF and runtime errors of torch.load
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"cannot read checkpoint {path}: {reason}") from None


def load_weights(
    source: str | Path, progress: bool = True, sha256: str | None = None
) -> dict[str, Any]:
    """A state dict from a local path or a URL (cached by ``torch.hub``).

    Loads with ``weights_only=True``; checks the file's SHA-256 when given.
    Accepts a bare state dict or a training checkpoint holding one under
    ``"state_dict"``.
    """
    text = str(source)
    if text.startswith(("http://", "https://")):
        obj = torch.hub.load_state_dict_from_url(
            text, map_location="cpu", progress=progress, weights_only=True
        )
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"HQA weights not found: {path}")
        if sha256 is not None:
            actual = sha256sum(path)
            if actual != sha256:
                raise RuntimeError(
                    f"HQA weights {path} are corrupt or not the released file: "
                    f"SHA-256 {actual} != expected {sha256}"
                )
        obj = read_checkpoint(path)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{text} does not hold an HQA state dict")
    return obj


def shipped_weights_path(filename: str) -> Path:
    """Where a shipped weights file is: in the installed package, or in ``zoo/``.

    ``pip install .`` copies the repository's ``zoo/`` folder into the package as
    ``compressai_hqa/zoo_weights``; a source checkout reads ``zoo/`` directly.
    """
    candidates = [
        Path(str(resources.files("compressai_hqa"))) / "zoo_weights" / filename,
        Path(__file__).resolve().parents[2] / "zoo" / filename,
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise PretrainedUnavailableError(
        f"the weights file {filename} is missing from this installation "
        f"(looked in {', '.join(str(c.parent) for c in candidates)})"
    )


def pretrained_state_dict(config_name: str, progress: bool = True) -> dict[str, Any]:
    """The shipped weights of ``config_name``, SHA-256 checked."""
    if config_name not in PRETRAINED:
        shipped = ", ".join(sorted(PRETRAINED)) or "none yet"
        raise PretrainedUnavailableError(
            f"no pretrained HQA weights are shipped for config {config_name!r} "
            f"(shipped: {shipped}). Train a stack with examples/train_hqa.py and load "
            "it with HQA.from_state_dict(torch.load(path, weights_only=True)), or pass "
            "weights=<path or URL> to compressai_hqa.zoo.hqa()."
        )
    filename, sha256 = PRETRAINED[config_name]
    return load_weights(
        shipped_weights_path(filename), progress=progress, sha256=sha256
    )
