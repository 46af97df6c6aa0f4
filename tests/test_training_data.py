"""Tests of compressai_hqa.training.data: batches as functions of (seed, layer, step)."""

from __future__ import annotations

import pytest
import torch

from compressai_hqa.training.data import TensorBatches, epoch_permutation


def test_batches_depend_only_on_seed_layer_and_step() -> None:
    images = torch.arange(40.0).view(40, 1, 1, 1)
    whole = list(TensorBatches(images, 8, seed=3).batches(layer=2, start=0, stop=12))
    resumed = list(TensorBatches(images, 8, seed=3).batches(layer=2, start=7, stop=12))
    assert all(torch.equal(a, b) for a, b in zip(whole[7:], resumed, strict=True))
    # an epoch is a permutation of the images (5 batches of 8), then a new one
    first = torch.cat(whole[:5]).flatten()
    assert torch.equal(first, epoch_permutation(40, 3, 2, 0).float())
    assert not torch.equal(first, torch.cat(whole[5:10]).flatten())
    other = next(TensorBatches(images, 8, seed=3).batches(layer=3, start=0, stop=1))
    assert not torch.equal(other, whole[0])


def test_ranks_take_their_slices_of_the_global_batch() -> None:
    images = torch.arange(40.0).view(40, 1, 1, 1)
    whole = next(TensorBatches(images, 8, seed=0).batches(1, 0, 1))
    halves = [
        next(TensorBatches(images, 8, seed=0, rank=r, world=2).batches(1, 0, 1))
        for r in (0, 1)
    ]
    assert torch.equal(torch.cat(halves), whole)
    with pytest.raises(ValueError, match="divisible"):
        TensorBatches(images, 8, seed=0, rank=0, world=3)
    with pytest.raises(ValueError, match="fewer than one batch"):
        TensorBatches(images[:4], 8, seed=0)
