"""Tests of compressai_hqa.recipes: the paper's training tables as frozen dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import tiny_config

from compressai_hqa.configs import CELEBA64, MNIST, VQVAE_MNIST
from compressai_hqa.recipes import (
    HAMS_MNIST_RECIPE,
    HQA_CELEBA64_RECIPE,
    HQA_MNIST_RECIPE,
    HQA_MNIST_V2_RECIPE,
    LayerRecipe,
    Recipe,
    default_recipe,
    get_recipe,
)


def test_hqa_recipes_match_tables_9_and_10() -> None:
    for layer in HQA_MNIST_RECIPE.layers:
        assert (layer.steps, layer.batch_size, layer.lr) == (18_000, 512, 4e-4)
        assert (layer.beta_entropy, layer.beta_commit) == (1e-3, 1e-3)
    assert (HQA_MNIST_RECIPE.temp_start, HQA_MNIST_RECIPE.temp_end) == (0.66, 0.01)
    assert (HQA_MNIST_RECIPE.reset_rule, HQA_MNIST_RECIPE.loss_scaling) == (
        "paper",
        "original",
    )
    assert [c.steps for c in HQA_CELEBA64_RECIPE.layers] == [100_000] * 4 + [
        60_000, 30_000, 30_000
    ]  # fmt: skip
    assert {(c.batch_size, c.beta_entropy) for c in HQA_CELEBA64_RECIPE.layers} == {
        (1024, 5e-5)
    }
    assert HQA_CELEBA64_RECIPE.temp_start == 0.4
    assert (HQA_MNIST_V2_RECIPE.reset_rule, HQA_MNIST_V2_RECIPE.loss_scaling) == (
        "data",
        "position",
    )


def test_hams_recipe_matches_table_12() -> None:
    assert [c.lr for c in HAMS_MNIST_RECIPE.layers] == [4e-4] * 4 + [1e-4]
    assert {
        (c.batch_size, c.beta_commit, c.steps) for c in HAMS_MNIST_RECIPE.layers
    } == {(256, 0.02, 18_000)}
    # the paper has no code resetting; EMA codebooks here revive dead codes
    assert (HAMS_MNIST_RECIPE.reset_fraction, HAMS_MNIST_RECIPE.reset_rule) == (
        0.75,
        "data",
    )


def test_ema_codebooks_reset_by_the_data_rule_only() -> None:
    from compressai_hqa.configs import HAMS_MNIST as HAMS_CONFIG

    HAMS_MNIST_RECIPE.check(HAMS_CONFIG)
    off = dataclasses.replace(HAMS_MNIST_RECIPE, reset_rule="paper", reset_fraction=0.0)
    off.check(HAMS_CONFIG)  # no resetting: the rule does not matter
    with pytest.raises(ValueError, match="'data' rule only"):
        dataclasses.replace(HAMS_MNIST_RECIPE, reset_rule="paper").check(HAMS_CONFIG)
    with pytest.raises(ValueError, match="reset_fraction"):
        dataclasses.replace(HAMS_MNIST_RECIPE, reset_fraction=1.5)


def test_default_recipes_and_lookup() -> None:
    assert default_recipe(MNIST) is HQA_MNIST_RECIPE
    assert default_recipe(CELEBA64) is HQA_CELEBA64_RECIPE
    for grid in VQVAE_MNIST:  # every flat VQ-VAE family: Table 14's recipe
        vqvae = default_recipe(VQVAE_MNIST[grid])
        assert vqvae.num_layers == 1 and vqvae.layers[0].beta_commit == 0.125
    # a config of no family: Table 10's values on each of its layers
    assert default_recipe(tiny_config(num_layers=2)) == Recipe.uniform(2)
    assert get_recipe("hams-mnist") is HAMS_MNIST_RECIPE
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("adam")


def test_recipes_are_frozen_and_round_trip_as_plain_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        HQA_MNIST_RECIPE.temp_start = 1.0  # type: ignore[misc]
    for recipe in (HQA_MNIST_RECIPE, HQA_CELEBA64_RECIPE, HAMS_MNIST_RECIPE):
        assert Recipe.from_dict(recipe.to_dict()) == recipe
    faster = HQA_MNIST_RECIPE.replace_layers(lr=1e-3)
    assert {c.lr for c in faster.layers} == {1e-3} and HQA_MNIST_RECIPE.layers[
        0
    ].lr == 4e-4
    with pytest.raises(ValueError, match="reset_rule"):
        dataclasses.replace(HQA_MNIST_RECIPE, reset_rule="kmeans")
    with pytest.raises(ValueError, match="lr"):
        LayerRecipe(lr=0.0)


def test_training_view_of_a_layer() -> None:
    training = HQA_MNIST_V2_RECIPE.training(4)
    assert (training.reset_rule, training.loss_scaling) == ("data", "position")
    assert (training.temperature, training.beta_entropy) == (0.66, 1e-3)
    with pytest.raises(ValueError, match="recipe has 1 layers"):
        default_recipe(VQVAE_MNIST[1]).check(MNIST)
