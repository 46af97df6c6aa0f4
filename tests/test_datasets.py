"""Tests of compressai_hqa.datasets on the real reference data."""

from __future__ import annotations

import pytest
import torch

from conftest import DATA_ROOT

from compressai_hqa.datasets import load_mnist, sample_digits


def test_mnist_splits_from_the_real_gz_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COMPRESSAI_HQA_CACHE", str(tmp_path / "cache"))
    test = load_mnist(DATA_ROOT, train=False)
    assert (
        test.images.shape == (10_000, 1, 32, 32) and test.images.dtype == torch.float32
    )
    assert test.images.min() == 0 and test.images.max() == 1
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    train = load_mnist(DATA_ROOT, train=True, size=28)
    assert train.images.shape == (60_000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist()[:2] == [5923, 6742]
    assert (
        tmp_path / "cache"
    ).is_dir()  # the read-only .gz files were decompressed there


def test_embedded_sample_digits_are_the_first_test_digits() -> None:
    sample = sample_digits()
    test = load_mnist(DATA_ROOT, train=False)
    assert torch.equal(sample.images, test.images[:100])
    assert torch.equal(sample.labels, test.labels[:100])


def test_missing_mnist_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_mnist(tmp_path)
