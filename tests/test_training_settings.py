"""Tests of compressai_hqa.training.settings: the options of a run, its fingerprint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import legacy_mnist_config, tiny_config

from compressai_hqa import HQA
from compressai_hqa.configs import HAMS_MNIST, MNIST, VQVAE_MNIST
from compressai_hqa.recipes import (
    HAMS_MNIST_RECIPE,
    HQA_MNIST_RECIPE,
    HQA_MNIST_V2_RECIPE,
)
from compressai_hqa.training.cli import build_parser, settings_from_args
from compressai_hqa.training.resume import CheckpointError, check_same_run
from compressai_hqa.training.upgrade import (
    recipe_of_first_layout,
    upgrade_checkpoint,
)


def _settings(*argv: str):
    args = build_parser().parse_args(["--data-root", "data", "--output", "out", *argv])
    return settings_from_args(args)


def test_the_fingerprint_holds_the_architecture_and_the_recipe() -> None:
    settings = _settings("--config", "mnist", "--layers", "2", "--steps", "300",
                         "--batch-size", "128", "--reset", "data")  # fmt: skip
    assert settings.output == Path("out") and settings.num_layers == 2
    assert settings.fingerprint() == {
        "config": MNIST.to_dict(),
        "recipe": replace(HQA_MNIST_RECIPE, reset_rule="data").to_dict(),
        "system": None,
        "dataset": "mnist",
        "seed": 0,
        "steps": [300, 300],
        "batch_size": [128, 128],
        "holdout": 0,
    }
    defaults = _settings()
    assert defaults.fingerprint()["steps"] == [18_000] * 5
    assert defaults.fingerprint()["batch_size"] == [512] * 5


def test_a_first_layout_fingerprint_matches_the_same_command_line() -> None:
    """The first checkpoint layout held the recipe inside the config. Upgraded,
    the same command line resumes it; another recipe does not."""
    settings = _settings("--reset", "data", "--loss-scaling", "position")
    legacy_config = legacy_mnist_config(reset_rule="data", loss_scaling="position")
    legacy = {"config": legacy_config, "dataset": "mnist", "seed": 0,
              "steps": [18_000] * 5, "batch_size": [512] * 5, "holdout": 0}  # fmt: skip
    checkpoint = {"run": legacy, "state_dict": {"_extra_state": {
        "format": "compressai_hqa.HQA/1", "config": legacy_config, "num_layers": 5}}}  # fmt: skip
    upgraded = upgrade_checkpoint(checkpoint)
    assert upgraded["state_dict"]["_extra_state"]["config"] == MNIST.to_dict()
    assert upgraded["run"]["config"] == MNIST.to_dict()
    assert upgrade_checkpoint(upgraded) is upgraded  # the current layout: as is
    run = upgraded["run"]
    check_same_run(run, settings.fingerprint(), Path("ckpt"))
    other = _settings("--reset", "data", "--lr", "3e-4")
    with pytest.raises(CheckpointError, match="recipe differs"):
        check_same_run(run, other.fingerprint(), Path("ckpt"))
    with pytest.raises(CheckpointError, match="another run"):
        check_same_run(legacy, settings.fingerprint(), Path("ckpt"))  # not upgraded


def test_the_recipe_of_a_first_layout_config_dict() -> None:
    legacy = legacy_mnist_config(reset_rule="data", loss_scaling="position")
    assert recipe_of_first_layout(legacy) == HQA_MNIST_V2_RECIPE
    assert recipe_of_first_layout(legacy_mnist_config()) == HQA_MNIST_RECIPE
    with pytest.raises(ValueError, match="first-layout"):
        recipe_of_first_layout({"name": "mnist"})


def test_systems_choose_the_architecture_and_the_recipe() -> None:
    hams = _settings("--system", "hams")
    assert (hams.config, hams.recipe, hams.system) == (
        HAMS_MNIST,
        HAMS_MNIST_RECIPE,
        "hams",
    )
    assert hams.batch_of(1) == 256
    vqvae = _settings("--system", "vqvae", "--config", "vqvae-mnist-4x4")
    assert vqvae.config == VQVAE_MNIST[4] and vqvae.num_layers == 1
    assert _settings("--system", "vqvae").config == VQVAE_MNIST[1]
    with pytest.raises(ValueError, match="not an architecture of system"):
        _settings("--system", "hams", "--config", "mnist")
    lr = _settings("--system", "hams", "--lr", "1e-3")
    assert {c.lr for c in lr.recipe.layers} == {1e-3}
    assert _settings("--recipe", "hqa-mnist-v2").recipe.reset_rule == "data"


def test_beta_entropy_sets_every_layer_and_is_part_of_the_fingerprint() -> None:
    settings = _settings("--recipe", "hqa-mnist-v2", "--beta-entropy", "0.03")
    assert {c.beta_entropy for c in settings.recipe.layers} == {0.03}
    assert {c.beta_commit for c in settings.recipe.layers} == {1e-3}
    plain = _settings("--recipe", "hqa-mnist-v2")
    assert settings.fingerprint()["recipe"] != plain.fingerprint()["recipe"]
    with pytest.raises(ValueError, match="--beta-entropy must be >= 0"):
        _settings("--beta-entropy", "-1")


def test_reset_min_distance_reaches_the_quantizer_and_old_runs_still_resume(
    tmp_path: Path,
) -> None:
    settings = _settings("--reset", "data", "--reset-min-distance", "0.5")
    assert settings.recipe.reset_min_distance == 0.5
    layer = HQA(tiny_config(num_layers=1)).layers[0]
    layer.configure_training(settings.recipe.training(0))
    assert layer.quantizer.reset_min_distance == 0.5
    with pytest.raises(ValueError, match="--reset-min-distance must be >= 0"):
        _settings("--reset-min-distance", "-1")
    # a checkpoint written before the option existed (no such key in its recipe)
    # belongs to the same run as the default, not to a changed one
    default = _settings("--reset", "data")
    stored = default.fingerprint()
    del stored["recipe"]["reset_min_distance"]
    check_same_run(stored, default.fingerprint(), tmp_path / "checkpoint.pth")
    with pytest.raises(CheckpointError, match="recipe differs"):
        check_same_run(stored, settings.fingerprint(), tmp_path / "checkpoint.pth")
