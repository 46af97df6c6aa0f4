"""Tests of compressai_hqa.recipes: the paper's training tables as frozen dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import legacy_mnist_config

from compressai_hqa.configs import CELEBA64, MNIST, VQVAE_MNIST
from compressai_hqa.recipes import (
    HAMS_MNIST,
    HQA_CELEBA64,
    HQA_MNIST,
    HQA_MNIST_V2,
    LayerRecipe,
    Recipe,
    default_recipe,
    get_recipe,
    legacy_recipe,
)


def test_hqa_recipes_match_tables_9_and_10() -> None:
    for layer in HQA_MNIST.layers:
        assert (layer.steps, layer.batch_size, layer.lr) == (18_000, 512, 4e-4)
        assert (layer.beta_entropy, layer.beta_commit) == (1e-3, 1e-3)
    assert (HQA_MNIST.temp_start, HQA_MNIST.temp_end) == (0.66, 0.01)
    assert (HQA_MNIST.reset_rule, HQA_MNIST.loss_scaling) == ("paper", "original")
    assert [c.steps for c in HQA_CELEBA64.layers] == [100_000] * 4 + [
        60_000, 30_000, 30_000
    ]  # fmt: skip
    assert {(c.batch_size, c.beta_entropy) for c in HQA_CELEBA64.layers} == {
        (1024, 5e-5)
    }
    assert HQA_CELEBA64.temp_start == 0.4
    assert (HQA_MNIST_V2.reset_rule, HQA_MNIST_V2.loss_scaling) == ("data", "position")


def test_hams_recipe_matches_table_12() -> None:
    assert [c.lr for c in HAMS_MNIST.layers] == [4e-4] * 4 + [1e-4]
    assert {(c.batch_size, c.beta_commit, c.steps) for c in HAMS_MNIST.layers} == {
        (256, 0.02, 18_000)
    }
    # the paper has no code resetting; EMA codebooks here revive dead codes
    assert (HAMS_MNIST.reset_fraction, HAMS_MNIST.reset_rule) == (0.75, "data")


def test_ema_codebooks_reset_by_the_data_rule_only() -> None:
    from compressai_hqa.configs import HAMS_MNIST as HAMS_CONFIG

    HAMS_MNIST.check(HAMS_CONFIG)
    off = dataclasses.replace(HAMS_MNIST, reset_rule="paper", reset_fraction=0.0)
    off.check(HAMS_CONFIG)  # no resetting: the rule does not matter
    with pytest.raises(ValueError, match="'data' rule only"):
        dataclasses.replace(HAMS_MNIST, reset_rule="paper").check(HAMS_CONFIG)
    with pytest.raises(ValueError, match="reset_fraction"):
        dataclasses.replace(HAMS_MNIST, reset_fraction=1.5)


def test_default_recipes_and_lookup() -> None:
    assert default_recipe(MNIST) is HQA_MNIST
    assert default_recipe(CELEBA64) is HQA_CELEBA64
    vqvae = default_recipe(VQVAE_MNIST[1])
    assert vqvae.num_layers == 1 and vqvae.layers[0].beta_commit == 0.125
    assert get_recipe("hams-mnist") is HAMS_MNIST
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("adam")


def test_recipes_are_frozen_and_round_trip_as_plain_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        HQA_MNIST.temp_start = 1.0  # type: ignore[misc]
    for recipe in (HQA_MNIST, HQA_CELEBA64, HAMS_MNIST):
        assert Recipe.from_dict(recipe.to_dict()) == recipe
    faster = HQA_MNIST.replace_layers(lr=1e-3)
    assert {c.lr for c in faster.layers} == {1e-3} and HQA_MNIST.layers[0].lr == 4e-4
    with pytest.raises(ValueError, match="reset_rule"):
        dataclasses.replace(HQA_MNIST, reset_rule="kmeans")
    with pytest.raises(ValueError, match="lr"):
        LayerRecipe(lr=0.0)


def test_the_recipe_of_a_pre_0_2_config_dict() -> None:
    """Checkpoints of runs started before the split (the v2 retrain among them)
    hold the recipe in the config dict."""
    legacy = legacy_mnist_config(reset_rule="data", loss_scaling="position")
    assert legacy_recipe(legacy) == HQA_MNIST_V2
    assert legacy_recipe(legacy_mnist_config()) == HQA_MNIST
    with pytest.raises(ValueError, match=r"pre-0\.2"):
        legacy_recipe({"name": "mnist"})


def test_training_view_of_a_layer() -> None:
    training = HQA_MNIST_V2.training(4)
    assert (training.reset_rule, training.loss_scaling) == ("data", "position")
    assert (training.temperature, training.beta_entropy) == (0.66, 1e-3)
    with pytest.raises(ValueError, match="recipe has 1 layers"):
        default_recipe(VQVAE_MNIST[1]).check(MNIST)
