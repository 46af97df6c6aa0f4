"""Runs ``examples/train_hqa.py`` and interrupts it after a chosen training step.

Usage::

    python tests/interrupted_training.py STOP_AFTER -- <train_hqa.py options>

Counts the training forwards of the trained layer (one per step, across layers) and
sends this process a SIGINT during forward ``STOP_AFTER``: the trainer finishes that
step, writes its checkpoint and exits with code 130, so the checkpoint is always at
the same step. ``STOP_AFTER`` 0 runs to the end. Only the training command line
(``compressai_hqa.training.cli.main``) and ``nn.Module`` hooks are used, so the
script runs the same with any version of the package: ``test_training_resume.py``
runs it on the code of an older commit to write the checkpoints a newer one must
resume, and ``tests/data/resume-5719177/`` was written by it (see its README).

``--config tiny`` is :data:`TINY` (added to the configs the command line knows): the
structure of the MNIST stack with small layers, so that a checkpoint with its
optimiser state takes tens of kilobytes.
"""

from __future__ import annotations

import os
import signal
import sys

import torch

from compressai_hqa.configs import HQAConfig, LayerConfig

try:
    from compressai_hqa import recipes
except ImportError:  # the code of 5719177 (0.1): the recipe is in the config
    recipes = None  # type: ignore[assignment]

#: Two small layers of K = 16 codes; resets every 3 steps, so that code resetting
#: runs (and must resume) within a few steps.
TINY = HQAConfig(
    name="tiny",
    in_channels=1,
    image_size=32,
    layers=tuple(
        LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=8)
        for _ in range(2)
    ),
    **({"reset_window": 3} if recipes is None else {}),
)


def _register_tiny() -> None:
    """Makes ``--config tiny`` known to the code on the path, whichever it is."""
    try:
        from compressai_hqa.families import Family, add_family
    except ImportError:  # before the registry of model families
        from compressai_hqa.configs import CONFIGS

        CONFIGS.setdefault("tiny", TINY)
        if recipes is not None:  # 0.2: the recipe is separate
            recipes.RECIPES.setdefault(
                "tiny", recipes.Recipe.uniform(2, reset_window=3)
            )
            recipes.DEFAULT_RECIPES.setdefault("tiny", "tiny")
        return
    recipes.RECIPES.setdefault("tiny", recipes.Recipe.uniform(2, reset_window=3))
    add_family(Family(TINY, "tiny", "mnist"))


def main(argv: list[str]) -> int:
    stop_after, separator, *train_args = argv
    if separator != "--":
        raise SystemExit(__doc__)
    stop_after = int(stop_after)
    forwards = 0

    def count(module: torch.nn.Module, *_: object) -> None:
        nonlocal forwards
        if type(module).__name__ == "HQALayer" and module.training:
            forwards += 1
            if forwards == stop_after:
                os.kill(os.getpid(), signal.SIGINT)

    torch.nn.modules.module.register_module_forward_hook(count)
    _register_tiny()
    from compressai_hqa.training.cli import main as train_main

    try:
        return train_main(train_args)
    except SystemExit as stop:
        return int(stop.code or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
