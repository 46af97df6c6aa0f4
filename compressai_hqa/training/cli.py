"""Command line of ``examples/train_hqa.py`` (``python -m compressai_hqa.training``)."""

from __future__ import annotations

import argparse
import sys

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from compressai_hqa.commands import CommandParser, run_command
from compressai_hqa.datasets import DATASET_KINDS
from compressai_hqa.families import FAMILIES, get_config
from compressai_hqa.recipes import (
    LOSS_SCALINGS,
    RECIPES,
    RESET_RULES,
    default_recipe,
    get_recipe,
)
from compressai_hqa.systems import SYSTEMS, get_system, with_config

from .resume import CheckpointError
from .settings import TrainSettings
from .trainer import train

__all__ = ["PROG", "build_parser", "main", "settings_from_args"]

PROG = "train_hqa.py"

EPILOG = """\
examples:
  # the paper's MNIST recipe (Table 10: 5 layers x 18k steps, batch 512)
  python examples/train_hqa.py --config mnist --data-root ../shared/data \\
      --output runs/mnist
  # a short CPU budget: 2 layers, 300 steps per layer, batch 128
  python examples/train_hqa.py --config mnist --data-root ../shared/data \\
      --output runs/quick --layers 2 --steps 300 --batch-size 128
  # continue after a crash or Ctrl-C
  python examples/train_hqa.py --config mnist --data-root ../shared/data \\
      --output runs/mnist --resume
  # a system of paper Table 3 (here HAMs; the flat VQ-VAE picks its code grid
  # with --config vqvae-mnist-2x2 etc.)
  python examples/train_hqa.py --system hams --data-root ../shared/data \\
      --output runs/hams
  # add layers 4 and 5 on top of a trained 3-layer stack
  python examples/train_hqa.py --config mnist --data-root ../shared/data \\
      --output runs/top --layers 5 --start-layer 4 --init runs/quick/model.pth
  # several GPUs / nodes
  torchrun --nproc_per_node=8 examples/train_hqa.py --config celeba64 \\
      --data-root ../shared/data/celeba/train_89x109 --output runs/celeba
"""


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog=PROG,
        description="Greedy layer-by-layer HQA training (Williams et al., "
        "NeurIPS 2020, Algorithm 2). Writes OUTPUT/checkpoint.pth (full training "
        "state, atomic), OUTPUT/model.pth (the trained stack after each layer), "
        "train_log.csv, layer_metrics.csv and recon_layer<l>.png.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a = p.add_argument
    a(
        "--config",
        choices=sorted(FAMILIES),
        default=None,
        help="model family (compressai_hqa.families): its architecture, default "
        "recipe and dataset transform: mnist (paper Table 10), celeba64 (Table 9), "
        "the baselines' (hams-mnist, vqvae-mnist-1x1, ...); default: the "
        "--system's, else mnist",
    )
    a(
        "--system",
        choices=list(SYSTEMS),
        default=None,
        help="a system of paper Table 3 (architecture and recipe): "
        + ", ".join(SYSTEMS)
        + " (see compressai_hqa.systems)",
    )
    a(
        "--recipe",
        choices=sorted(RECIPES),
        default=None,
        help="training recipe (optimiser, schedules, loss weights, code "
        "resetting); default: the --system's, else the --config family's",
    )
    a(
        "--data-root",
        type=Path,
        required=True,
        help="MNIST root holding MNIST/raw/*.gz, or an image folder",
    )
    a("--output", type=Path, required=True, help="run folder (created if needed)")
    a(
        "--dataset",
        choices=DATASET_KINDS,
        default=None,
        help="mnist, faces (center crop + resize, in memory) or folder (random crops "
        "through a DataLoader); default: the --config family's",
    )
    a(
        "--layers",
        type=int,
        default=None,
        help="train up to this layer (default: all layers of the config)",
    )
    a(
        "--start-layer",
        type=int,
        default=1,
        help="first layer to train, from scratch; > 1 needs --init (default: "
        "%(default)s)",
    )
    a(
        "--init",
        type=Path,
        default=None,
        help="checkpoint or model.pth holding the layers below --start-layer (any "
        "layers above them in it are not used)",
    )
    a(
        "--steps",
        type=int,
        default=None,
        help="training steps per layer (default: the recipe's, 18000 for mnist)",
    )
    a(
        "--batch-size",
        type=int,
        default=None,
        help="global batch size, split across ranks (default: the recipe's)",
    )
    a(
        "--lr",
        type=float,
        default=None,
        help="RAdam learning rate of every layer (default: the recipe's, 4e-4)",
    )
    a(
        "--beta-entropy",
        type=float,
        default=None,
        help="weight beta_e of the entropy (KL-to-uniform) term of every trained "
        "layer; larger keeps the posterior q(k|z) more stochastic (default: the "
        "recipe's, 1e-3 for mnist)",
    )
    a(
        "--reset",
        dest="reset_rule",
        choices=RESET_RULES,
        default=None,
        help="code-reset rule: 'paper' (least-used code next to the most-used, one "
        "per window) or 'data' (every dead code re-seeded at a batch encoder "
        "output); default: the recipe's ('paper'; 'data' for EMA codebooks)",
    )
    a(
        "--reset-fraction",
        type=float,
        default=None,
        help="code resetting runs during this fraction of each layer's steps "
        "(0: never); default: the recipe's (0.75)",
    )
    a(
        "--reset-min-distance",
        type=float,
        default=None,
        help="with --reset data, a dead code is re-seeded only at a batch encoder "
        "output at least this squared distance from every code; smaller revives "
        "codes where the encoder outputs lie close together (default: the "
        "recipe's, 4)",
    )
    a(
        "--loss-scaling",
        choices=LOSS_SCALINGS,
        default=None,
        help="weight of the entropy and commitment terms: 'original' (scaled by "
        "latent positions / target elements, as the original code) or 'position' "
        "(beta on the per-position means, as the paper's equations); default: "
        "the recipe's ('original')",
    )
    a(
        "--resume",
        action="store_true",
        help="continue from OUTPUT/checkpoint.pth with the same options",
    )
    a(
        "--deterministic",
        action="store_true",
        help="deterministic algorithms: a resumed run is bit-identical to an "
        "uninterrupted one",
    )
    a(
        "--device",
        default="auto",
        help="auto (CUDA when available), cpu, cuda, cuda:1... (default: %(default)s)",
    )
    a("--seed", type=int, default=0, help="seed (default: %(default)s)")
    a(
        "--checkpoint-every",
        type=int,
        default=1000,
        help="steps between checkpoints; one is also written at the end of each "
        "layer and on Ctrl-C (default: %(default)s)",
    )
    a(
        "--log-every",
        type=int,
        default=50,
        help="steps between log rows and progress-bar updates (default: %(default)s)",
    )
    a("--compile", action="store_true", help="torch.compile the trained layer")
    a("--channels-last", action="store_true", help="channels-last memory format")
    a(
        "--no-amp",
        dest="amp",
        action="store_false",
        help="disable bf16 autocast on CUDA",
    )
    a(
        "--eval-root",
        type=Path,
        default=None,
        help="image folder for the end-of-layer MSE (default: MNIST test split, or "
        "the first --eval-images training images)",
    )
    a(
        "--eval-images",
        type=int,
        default=10_000,
        help="images used for the end-of-layer MSE (default: %(default)s)",
    )
    a(
        "--holdout",
        type=int,
        default=0,
        help="keep the last N training images out of training and report the "
        "end-of-layer MSE on them (a validation split; default: %(default)s)",
    )
    a(
        "--num-workers",
        type=int,
        default=2,
        help="DataLoader workers for --dataset folder (default: %(default)s)",
    )
    a("--no-progress", dest="progress", action="store_false", help="no progress bars")
    a(
        "--no-tensorboard",
        dest="tensorboard",
        action="store_false",
        help="do not write TensorBoard events even if tensorboard is installed",
    )
    return p


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    values = vars(args).copy()
    system = get_system(values["system"]) if values["system"] else None
    name = values.pop("config")
    if system is None:
        config = get_config(name or "mnist")
    else:
        config = system.config if name is None else get_config(name)
        system = with_config(system, config)
    recipe_name = values.pop("recipe")
    if recipe_name is not None:
        recipe = get_recipe(recipe_name)
    else:
        recipe = system.recipe if system else default_recipe(config)
    lr = values.pop("lr")
    if lr is not None:
        if lr <= 0:
            raise ValueError("--lr must be > 0")
        recipe = recipe.replace_layers(lr=lr)
    beta_entropy = values.pop("beta_entropy")
    if beta_entropy is not None:
        if beta_entropy < 0:
            raise ValueError("--beta-entropy must be >= 0")
        recipe = recipe.replace_layers(beta_entropy=beta_entropy)
    min_distance = values.get("reset_min_distance")
    if min_distance is not None and not min_distance >= 0:
        raise ValueError("--reset-min-distance must be >= 0")
    for key in ("reset_rule", "reset_fraction", "reset_min_distance", "loss_scaling"):
        value = values.pop(key)
        if value is not None:
            recipe = replace(recipe, **{key: value})
    values.update(config=config, recipe=recipe)
    for key in ("steps", "batch_size", "checkpoint_every", "log_every", "eval_images"):
        if values[key] is not None and values[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1")
    return TrainSettings(**values)


def _settings(args: argparse.Namespace) -> TrainSettings:
    """:func:`settings_from_args`, after checking that the input paths exist."""
    for option in ("data_root", "init"):
        path = getattr(args, option)
        if path is not None and not Path(path).exists():
            flag = "--" + option.replace("_", "-")
            raise FileNotFoundError(f"{flag} {path}: no such file or folder")
    return settings_from_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Trains as the arguments say; returns 0.

    Raises:
        SystemExit: an error, printed in one line, with the exit status of
            :mod:`compressai_hqa.commands`: 1 for bad arguments, 2 for data or a
            checkpoint that cannot be used (missing, corrupt or of another run:
            the trainer does not tell these apart), 130 after Ctrl-C (a
            checkpoint is written first).
    """
    args = build_parser().parse_args(argv)
    settings = run_command(lambda: _settings(args), PROG, usage=(ValueError,))
    model = run_command(
        lambda: train(settings), PROG, data=(CheckpointError, OSError, ValueError)
    )
    print(
        f"trained layers 1..{model.num_layers} of {settings.config.name!r}: "
        f"{settings.output / 'model.pth'}",
        file=sys.stderr,
    )
    return 0
