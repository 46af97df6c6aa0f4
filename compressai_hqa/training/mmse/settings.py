"""The options of one MMSE decoder training run (one layer, one kind)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compressai_hqa.models.mmse import MMSESpec

__all__ = ["MMSESettings"]

# Options that may change when a run resumes: they do not change its result.
_NOT_IN_FINGERPRINT = ("data_root", "output", "resume", "progress", "checkpoint_every")


@dataclass(frozen=True)
class MMSESettings:
    """How to train the MMSE decoder of one layer of a frozen stack.

    Args:
        data_root: folder holding ``MNIST/raw/``.
        output: the run folder; layer ``l`` of kind ``k`` writes to
            ``output/layer<l>-<k>/`` and all layers share ``output/codes.pt``.
        layer: the layer whose codes are decoded (1-based).
        spec: the decoder (kind and width).
        weights: the stack's weights (path or URL); None: the shipped MNIST
            stack.
        steps: optimiser steps (a ``"table"`` takes none).
        batch_size: images per step.
        lr: Adam's learning rate, cosine-annealed to ``lr * final_lr_ratio``.
        final_lr_ratio: the learning rate of the last step, relative to ``lr``.
        seed: seeds the initialisation of a ``"net"`` and the order of batches.
        holdout: the last ``holdout`` training digits are held out (never
            trained on): the held-out MSE of the log is theirs.
        eval_every: steps between held-out evaluations.
        log_every: steps between rows of ``train_log.csv``.
        checkpoint_every: steps between checkpoints.
        resume: continue the checkpoint of the run folder.
        progress: show a progress bar.
    """

    data_root: str
    output: str
    layer: int
    spec: MMSESpec = field(default_factory=MMSESpec)
    weights: str | None = None
    steps: int = 3000
    batch_size: int = 64
    lr: float = 3e-4
    final_lr_ratio: float = 0.01
    seed: int = 0
    holdout: int = 5000
    eval_every: int = 250
    log_every: int = 25
    checkpoint_every: int = 100
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.layer < 1:
            raise ValueError(f"layer must be >= 1, got {self.layer}")
        for name in ("steps", "batch_size", "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every < 1:
            raise ValueError("checkpoint_every must be >= 1")
        if self.holdout < 1:
            raise ValueError(
                "holdout must be >= 1: choices are made on held-out digits"
            )
        if not self.lr > 0 or not 0 < self.final_lr_ratio <= 1:
            raise ValueError("need lr > 0 and 0 < final_lr_ratio <= 1")

    @property
    def run_dir(self) -> Path:
        """Where this layer's checkpoint, log and model go."""
        return Path(self.output) / f"layer{self.layer}-{self.spec.kind}"

    @property
    def codes_path(self) -> Path:
        """The cache of the stack's code maps, shared by the layers of a run."""
        return Path(self.output) / "codes.pt"

    def fingerprint(self) -> dict[str, Any]:
        """The options a resumed run must share with its checkpoint."""
        values = asdict(self)
        for name in _NOT_IN_FINGERPRINT:
            values.pop(name)
        return values
