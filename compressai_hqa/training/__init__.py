"""Greedy layer-by-layer training of HQA stacks (``examples/train_hqa.py``)."""

from .checkpoint import CheckpointError, atomic_save, load_checkpoint
from .schedules import FlatCosineLR, gumbel_temperature, lr_factor
from .trainer import DATASETS, TrainSettings, train

__all__ = [
    "DATASETS",
    "CheckpointError",
    "FlatCosineLR",
    "TrainSettings",
    "atomic_save",
    "gumbel_temperature",
    "load_checkpoint",
    "lr_factor",
    "train",
]
