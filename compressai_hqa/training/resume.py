"""Checkpoints: what a run writes so that it can resume, and where a run starts.

``OUTPUT/checkpoint.pth`` (:data:`CHECKPOINT_FORMAT`) holds tensors and plain
values only, so it loads with ``torch.load(..., weights_only=True)``::

    {"format": CHECKPOINT_FORMAT, "state_dict": the stack up to the layer being trained
     (with its config, see compressai_hqa.models.state), "layer": l, "step": s,
     "layer_done": bool, "optimizer": ..., "scheduler": ..., "rng": {"cpu", "cuda"},
     "run": TrainSettings.fingerprint(), "elapsed_s": wall time of the layer}

Checkpoints of the first layout (the recipe inside ``run["config"]``) are
read as the current one (:mod:`compressai_hqa.training.upgrade`).

It is written atomically every ``checkpoint_every`` steps, at the end of each
layer (with ``OUTPUT/model.pth``, the bare state dict) and on Ctrl-C; a run
killed at any moment resumes from the last one. Keys and values are a file
format: runs in progress depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compressai_hqa.configs import HQAConfig
from compressai_hqa.files import atomic_save, load_torch_file
from compressai_hqa.models import HQA, state_dict_config, truncate_state_dict
from compressai_hqa.recipes import Recipe
from compressai_hqa.zoo import load_weights

from .schedules import FlatCosineLR
from .settings import TrainSettings
from .upgrade import upgrade_checkpoint

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "MODEL",
    "CheckpointError",
    "LayerState",
    "Start",
    "load_training_checkpoint",
    "start_of_run",
]

CHECKPOINT_FORMAT = "compressai_hqa.train/1"
#: File names in the run's output folder.
CHECKPOINT = "checkpoint.pth"
MODEL = "model.pth"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the run."""


@dataclass
class LayerState:
    """The training state of the layer being trained (what a checkpoint adds to
    the run's settings).

    Attributes:
        layer: the layer (1-based).
        stack: the stack truncated at ``layer``, in training mode.
        optimizer: the layer's RAdam, over ``stack.top.parameters()`` in order.
        scheduler: its learning-rate schedule.
        step: steps done.
        elapsed_s: wall time of the layer's training before this process.
    """

    layer: int
    stack: HQA
    optimizer: torch.optim.Optimizer
    scheduler: FlatCosineLR
    step: int = 0
    elapsed_s: float = 0.0

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Continues from a checkpoint of this layer (its model is loaded)."""
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.step = int(checkpoint["step"])
        self.elapsed_s = float(checkpoint["elapsed_s"])

    def save(
        self,
        settings: TrainSettings,
        device: torch.device,
        elapsed_s: float,
        done: bool = False,
    ) -> None:
        """Writes ``checkpoint.pth`` at :attr:`step` (and ``model.pth`` if done)."""
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "state_dict": self.stack.state_dict(),
            "layer": self.layer,
            "step": self.step,
            "layer_done": done,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": get_rng_state(device),
            "run": settings.fingerprint(),
            "elapsed_s": elapsed_s,  # wall time of this layer's training so far
        }
        output = Path(settings.output)
        atomic_save(checkpoint, output / CHECKPOINT)
        if done:
            atomic_save(self.stack.state_dict(), output / MODEL)


@dataclass
class Start:
    """Where a run starts.

    Attributes:
        model: the stack of ``settings.num_layers`` layers (those trained loaded).
        layer: the first layer to train.
        checkpoint: the checkpoint to resume within ``layer``, or None.
        resumed_at: (layer, step) of the checkpoint resumed from, or None.
    """

    model: HQA
    layer: int
    checkpoint: dict[str, Any] | None = None
    resumed_at: tuple[int, int] | None = None


def start_of_run(settings: TrainSettings) -> Start:
    """The model and the position a run starts from: a fresh stack, the
    checkpoint of ``--resume`` or the trained layers of ``--init``.

    Raises:
        CheckpointError: a missing, corrupt or foreign checkpoint, or an existing
            one without ``--resume``.
        ValueError: bad ``--layers``, ``--start-layer`` or ``--init``.
    """
    config, n = settings.config, settings.num_layers
    if not 1 <= n <= config.num_layers:
        raise ValueError(f"--layers must be in [1, {config.num_layers}], got {n}")
    path = Path(settings.output) / CHECKPOINT
    if settings.resume:
        state = load_training_checkpoint(path)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a training checkpoint")
        check_same_run(state["run"], settings.fingerprint(), path)
        model = _from_state_dict(state["state_dict"], n, path)
        layer, step = int(state["layer"]), int(state["step"])
        if state["layer_done"]:
            return Start(model, layer + 1, None, (layer, step))
        return Start(model, layer, state, (layer, step))
    if path.exists():
        raise CheckpointError(
            f"{path} exists: pass --resume to continue it, or choose another --output"
        )
    torch.manual_seed(settings.seed)
    start = settings.start_layer
    if start == 1:
        if settings.init is not None:
            raise ValueError("--init needs --start-layer > 1")
        return Start(HQA(config, num_layers=n), 1)
    if settings.init is None:
        raise ValueError(f"--start-layer {start} needs --init <checkpoint>")
    weights = load_weights(settings.init, progress=False)
    _, stored = state_dict_config(weights)
    if stored < start - 1 or not 1 < start <= n:
        raise ValueError(
            f"--start-layer {start} needs layers 1..{start - 1} in --init (it "
            f"holds {stored}) and must be <= --layers {n}"
        )
    # Layers start.. are trained from a fresh initialisation even when --init
    # holds trained ones (e.g. retraining the top layer of a finished stack).
    below = truncate_state_dict(weights, start - 1)
    model = _from_state_dict(below, n, settings.init, init=True, config=config)
    return Start(model, start)


def _from_state_dict(
    weights: dict[str, Any],
    n: int,
    path: Path,
    init: bool = False,
    config: HQAConfig | None = None,
) -> HQA:
    """``HQA.from_state_dict`` with errors naming the checkpoint. ``--init``
    builds ``config``'s stack on layers of the same architecture."""
    try:
        return HQA.from_state_dict(weights, num_layers=n, config=config)
    except ValueError as err:
        what = "--init" if init else "the checkpoint"
        raise CheckpointError(f"{path} ({what}): {err}") from None


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint (or a bare HQA state dict, as ``{"state_dict": sd}``).

    Raises:
        CheckpointError: no such file, or not a readable HQA checkpoint.
    """
    path = Path(path)
    try:
        obj = load_torch_file(path)
    except (FileNotFoundError, ValueError) as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not an HQA checkpoint")
    if "state_dict" not in obj:  # a bare model state dict
        obj = {"state_dict": obj}
    if "_extra_state" not in obj["state_dict"]:
        raise CheckpointError(f"{path} is not an HQA checkpoint (no model config)")
    return upgrade_checkpoint(obj)


def check_same_run(stored: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Raises CheckpointError unless two run fingerprints agree.

    The architecture and the recipe are compared as values.
    """
    for key in (
        "config",
        "recipe",
        "dataset",
        "seed",
        "steps",
        "batch_size",
        "holdout",
    ):
        if _run_value(stored, key) != _run_value(current, key):
            what = key if key in ("config", "recipe") else f"{key} {stored.get(key)!r}"
            raise CheckpointError(
                f"{path} belongs to another run ({what} differs); "
                "resume with the same options or choose another --output"
            )


def _run_value(fingerprint: dict[str, Any], key: str) -> Any:
    """A fingerprint's value for ``key``; the architecture and the recipe as
    :class:`HQAConfig` and :class:`Recipe`."""
    try:
        if key == "config":
            return HQAConfig.from_dict(fingerprint["config"])
        if key == "recipe":
            return Recipe.from_dict(fingerprint["recipe"])
    except (KeyError, TypeError, ValueError):
        return None
    return fingerprint.get(key)


def get_rng_state(device: torch.device) -> dict[str, Any]:
    """The random states a resumed run continues (CPU, and the CUDA device's)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restores :func:`get_rng_state`'s states."""
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
