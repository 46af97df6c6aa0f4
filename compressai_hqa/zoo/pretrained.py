"""Trained HQA weights: the one loader of state dicts, and the shipped files.

:func:`load_weights` is how every part of the package reads weights (the zoo,
the codec, the figures, ``eval_model`` and ``--init`` of the trainer): a local
file or a URL, a bare state dict or a checkpoint holding one;
:meth:`~compressai_hqa.HQA.from_state_dict` builds the model from it. Which file
is shipped for which model family is the family's
(:attr:`compressai_hqa.families.Family.weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from compressai_hqa.families import FAMILIES
from compressai_hqa.files import load_torch_file

__all__ = [
    "STATE_DICT_KEYS",
    "PretrainedUnavailableError",
    "load_weights",
    "pretrained_state_dict",
    "shipped_weights_path",
]

#: Where checkpoints keep their model's state dict: ours (``"state_dict"``) and
#: those CompressAI's ``eval_model`` looks for.
STATE_DICT_KEYS = ("state_dict", "network", "model_state_dict")


class PretrainedUnavailableError(RuntimeError):
    """No trained weights are shipped for the requested config."""


def load_weights(
    source: str | Path, progress: bool = True, sha256: str | None = None
) -> dict[str, Any]:
    """A state dict from a local path or a URL (cached by ``torch.hub``).

    Loads with ``weights_only=True``; checks the file's SHA-256 when given.
    Accepts a bare state dict or a checkpoint holding one under the first key of
    :data:`STATE_DICT_KEYS` it has (a training checkpoint: ``"state_dict"``).

    Raises:
        FileNotFoundError: no such file.
        RuntimeError: the SHA-256 differs from ``sha256``.
        ValueError: not a readable PyTorch file holding a state dict.
    """
    text = str(source)
    if text.startswith(("http://", "https://")):
        obj = torch.hub.load_state_dict_from_url(
            text, map_location="cpu", progress=progress, weights_only=True
        )
    else:
        obj = load_torch_file(source, sha256)
    if isinstance(obj, Mapping):
        obj = next((obj[key] for key in STATE_DICT_KEYS if key in obj), obj)
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
    """The shipped weights of model family ``config_name``, SHA-256 checked.

    Raises:
        PretrainedUnavailableError: none are shipped for it.
        RuntimeError: the file's SHA-256 is not the family's.
    """
    family = FAMILIES.get(config_name)
    if family is None or family.weights is None:
        shipped = sorted(f.name for f in FAMILIES.values() if f.weights)
        shipped = ", ".join(shipped) or "none yet"
        raise PretrainedUnavailableError(
            f"no pretrained HQA weights are shipped for config {config_name!r} "
            f"(shipped: {shipped}). Train a stack with examples/train_hqa.py and load "
            "it with HQA.from_state_dict(torch.load(path, weights_only=True)), or pass "
            "weights=<path or URL> to compressai_hqa.zoo.hqa()."
        )
    weights = family.weights
    return load_weights(
        shipped_weights_path(weights.filename), progress=progress, sha256=weights.sha256
    )
