"""Tests of compressai_hqa.training.settings: the options of a run, its fingerprint."""

from __future__ import annotations

from pathlib import Path

from compressai_hqa.configs import MNIST
from compressai_hqa.training.cli import build_parser, settings_from_args


def test_the_fingerprint_of_a_command_line_is_stable() -> None:
    """A checkpoint stores this dict (``"run"``); ``--resume`` compares it, so its
    keys and values must not change for the same command line."""
    args = build_parser().parse_args(
        ["--config", "mnist", "--data-root", "data", "--output", "out", "--layers",
         "2", "--steps", "300", "--batch-size", "128", "--reset", "data"]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert settings.output == Path("out") and settings.num_layers == 2
    assert settings.fingerprint() == {
        "config": {**MNIST.to_dict(), "reset_rule": "data"},
        "dataset": "mnist",
        "seed": 0,
        "steps": [300, 300],
        "batch_size": [128, 128],
        "holdout": 0,
    }
    defaults = settings_from_args(
        build_parser().parse_args(["--data-root", "d", "--output", "o"])
    )
    assert defaults.fingerprint()["steps"] == [18_000] * 5
    assert defaults.fingerprint()["batch_size"] == [512] * 5
