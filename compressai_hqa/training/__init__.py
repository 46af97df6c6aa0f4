"""Greedy layer-by-layer training of HQA stacks (``examples/train_hqa.py``).

:mod:`.settings` (the options of a run), :mod:`.trainer` (the loop),
:mod:`.resume` (checkpoints), :mod:`.distributed` (ranks, device, Ctrl-C),
:mod:`.data` (datasets and batches), :mod:`.schedules`, :mod:`.monitor` (logs)
and :mod:`.cli` (the command line).
"""

from .resume import CheckpointError, load_training_checkpoint
from .schedules import FlatCosineLR, gumbel_temperature, lr_factor
from .settings import TrainSettings
from .trainer import train

__all__ = [
    "CheckpointError",
    "FlatCosineLR",
    "TrainSettings",
    "gumbel_temperature",
    "load_training_checkpoint",
    "lr_factor",
    "train",
]
