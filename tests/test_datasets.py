"""Tests of compressai_hqa.datasets on the real reference data."""

from __future__ import annotations

import pytest
import torch

from conftest import DATA_ROOT

from compressai_hqa.datasets import (
    RandomCropFolder,
    list_images,
    load_face_folder,
    load_mnist,
    sample_digits,
)


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


def test_face_folder_matches_the_full_resolution_pipeline() -> None:
    """89x109 faces, center-cropped and resized to 64, match the 178x218 originals."""
    half = load_face_folder(DATA_ROOT / "celeba" / "train_89x109", size=64, limit=32)
    full = load_face_folder(DATA_ROOT / "celeba" / "train_178x218", size=64)
    assert half.images.shape == full.images.shape == (32, 3, 64, 64)
    assert half.images.min() >= 0 and half.images.max() <= 1
    # the same faces (ids 000001-000032); JPEG and the halving differ a little
    assert (half.images - full.images).abs().mean() < 0.03
    gray = load_face_folder(
        DATA_ROOT / "celeba" / "train_89x109", 32, channels=1, limit=2
    )
    assert gray.images.shape == (2, 1, 32, 32)


def test_random_crops_are_deterministic_per_epoch() -> None:
    folder = RandomCropFolder(DATA_ROOT / "kodak", size=64, seed=3)
    assert len(folder) == 24
    a, b, c = folder[(5, 0)], folder[(5, 0)], folder[(5, 1)]
    assert a.shape == (3, 64, 64) and torch.equal(a, b) and not torch.equal(a, c)


def test_bad_folders_are_clear_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        list_images(tmp_path / "missing")
    with pytest.raises(ValueError, match="no images"):
        list_images(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.jpg"):
        load_face_folder(tmp_path)
