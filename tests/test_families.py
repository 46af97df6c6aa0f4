"""Tests of compressai_hqa.families: one registry of model families, read by every
command (zoo, CompressAI registration, trainer, codec, evaluation)."""

from __future__ import annotations

import dataclasses

from pathlib import Path

import pytest

from conftest import tiny_config

from compressai_hqa.configs import CELEBA64, MNIST, VQVAE_MNIST
from compressai_hqa.datasets import DATASET_KINDS
from compressai_hqa.families import (
    FAMILIES,
    Family,
    add_family,
    family_of,
    get_config,
    get_family,
)
from compressai_hqa.recipes import RECIPES, default_recipe, get_recipe
from compressai_hqa.training import TrainSettings


def test_every_family_is_named_as_its_config_and_trains_with_a_recipe_that_fits():
    assert {"mnist", "mnist-wide", "celeba64", "hams-mnist", "hams-gs-mnist",
            "hams-mse-mnist"} | {c.name for c in VQVAE_MNIST.values()} == set(
        FAMILIES
    )  # fmt: skip
    for name, family in FAMILIES.items():
        assert family.name == family.config.name == name
        assert family.recipe in RECIPES and family.dataset in DATASET_KINDS
        get_recipe(family.recipe).check(family.config)  # a layer for each layer
    assert get_config("mnist") is MNIST and get_family("celeba64").config is CELEBA64
    assert get_config(CELEBA64) is CELEBA64


def test_the_dataset_transform_is_the_familys_not_the_channel_counts():
    assert FAMILIES["celeba64"].dataset == "faces"
    assert {f.dataset for f in FAMILIES.values() if f.config.in_channels == 1} == {
        "mnist"
    }
    with pytest.raises(ValueError, match="dataset must be one of"):
        Family(MNIST, "hqa-mnist", "digits")


def test_shipped_weights_and_compressai_names_come_from_the_families():
    shipped = {f.name for f in FAMILIES.values() if f.weights is not None}
    assert shipped == {"mnist"}
    assert FAMILIES["mnist"].weights.filename == "hqa-mnist-0da85963.pth"
    listed = {f.name for f in FAMILIES.values() if f.compressai}
    assert listed == {"mnist", "celeba64"}


def test_unknown_names_are_errors_that_list_the_families():
    with pytest.raises(ValueError, match=r"unknown model family 'imagenet'.*mnist"):
        get_config("imagenet")
    assert family_of(tiny_config()) is None


def test_a_family_is_added_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compressai_hqa.families.FAMILIES", dict(FAMILIES))
    from compressai_hqa import families

    tiny = Family(tiny_config(num_layers=2), "hqa-mnist", "folder")
    add_family(tiny)
    add_family(tiny)  # the same value again: nothing happens
    assert families.FAMILIES["tiny"] is tiny and family_of(tiny.config) is tiny
    with pytest.raises(ValueError, match="a different family named 'tiny'"):
        add_family(dataclasses.replace(tiny, dataset="mnist"))


def test_a_runs_default_recipe_and_dataset_are_its_familys(tmp_path: Path) -> None:
    def settings(config, root: Path = tmp_path) -> TrainSettings:
        return TrainSettings(config, default_recipe(config), root, tmp_path / "out")

    faces = settings(CELEBA64)
    assert faces.dataset_kind == "faces" and faces.recipe is get_recipe("hqa-celeba64")
    for grid, config in VQVAE_MNIST.items():
        assert settings(config).recipe is get_recipe("vqvae-mnist"), grid
    # a config of no family: Table 10's values, and the data root decides
    rgb = tiny_config(in_channels=3)
    assert settings(rgb).dataset_kind == "folder"  # never the faces crop
    (tmp_path / "digits" / "MNIST" / "raw").mkdir(parents=True)
    assert settings(tiny_config(), tmp_path / "digits").dataset_kind == "mnist"
    assert settings(tiny_config()).dataset_kind == "folder"
