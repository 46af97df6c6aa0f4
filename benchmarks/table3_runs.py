"""Paper Table 3, rerun: the budgets, and the training runs of every system.

Part of ``benchmarks/table3.py`` (see its docstring): :class:`Budget` says how much
every system gets, :func:`train_system` trains (or resumes) a system's runs under
``OUTPUT/runs/``.
"""

from __future__ import annotations

import argparse
import csv
import sys

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compressai_hqa.systems import System
from compressai_hqa.training import TrainSettings, train
from compressai_hqa.training.resume import CHECKPOINT, MODEL, load_training_checkpoint

#: The rates of the table, bits per 32x32 image.
RATES = (8, 32, 128, 512, 2048)


@dataclass(frozen=True)
class Budget:
    """How much every system gets.

    Args:
        name: ``cpu``, ``paper`` or ``smoke``.
        steps: steps per layer (None: each recipe's own).
        batch_size: batch size (None: each recipe's own).
        seeds: training seeds.
        rfid_n: test digits whose reconstructions enter rFID (0: no rFID).
        test_n: test digits evaluated (None: all 10,000).
        kmeans_train: training digits the k-means floor is fitted on (None: all).
        kmeans_iter: Lloyd iterations at most.
    """

    name: str
    steps: int | None
    batch_size: int | None
    seeds: tuple[int, ...]
    rfid_n: int
    test_n: int | None = None
    kmeans_train: int | None = None
    kmeans_iter: int = 100


BUDGETS = {
    "cpu": Budget("cpu", 500, 128, (0,), 500),
    "paper": Budget("paper", None, None, tuple(range(10)), 10_000),
    "smoke": Budget(
        "smoke", 2, 16, (0,), 10, test_n=100, kmeans_train=1000, kmeans_iter=3
    ),
}


def training_jobs(system: System, seed: int) -> dict[str, tuple[Any, int]]:
    """Run name -> (config, layers) of the models ``system`` trains for ``seed``."""
    if not system.flat:
        return {f"{system.name}-s{seed}": (system.config, system.config.num_layers)}
    return {
        f"{system.name}-{config.name.rsplit('-', 1)[1]}-s{seed}": (config, n)
        for config, n in system.rates().values()
    }


def _finished(run: Path, layers: int) -> bool:
    if not (run / CHECKPOINT).is_file() or not (run / MODEL).is_file():
        return False
    state = load_training_checkpoint(run / CHECKPOINT)
    return int(state["layer"]) == layers and bool(state["layer_done"])


def train_system(args: argparse.Namespace, system: System, seed: int) -> None:
    budget: Budget = args.budget
    for name, (config, layers) in training_jobs(system, seed).items():
        run = args.output / "runs" / name
        if _finished(run, layers):
            continue
        print(f"training {name} ({config.name})", file=sys.stderr, flush=True)
        settings = TrainSettings(
            config=config,
            recipe=system.recipe,
            system=system.name,
            data_root=args.data_root,
            output=run,
            layers=layers,
            steps=budget.steps,
            batch_size=budget.batch_size,
            resume=(run / CHECKPOINT).is_file(),
            seed=seed,
            device=args.device,
            compile=args.compile,
            checkpoint_every=250,
            log_every=50,
            eval_images=min(1000, budget.test_n or 1000),
            progress=args.progress,
            tensorboard=False,
        )
        train(settings)


def training_seconds(args: argparse.Namespace, systems: Sequence[System]) -> float:
    """Wall seconds of every finished layer of ``systems``' runs (resumes included)."""
    total = 0.0
    for seed in args.budget.seeds:
        for system in systems:
            for name in training_jobs(system, seed):
                path = args.output / "runs" / name / "layer_metrics.csv"
                if path.is_file():
                    with path.open(newline="") as f:
                        total += sum(float(r["wall_s"]) for r in csv.DictReader(f))
    return total
