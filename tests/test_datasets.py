"""Tests of compressai_hqa.datasets on real data: the shipped MNIST subset (as IDX
files) and the full reference data."""

from __future__ import annotations

import gzip
import shutil

from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_subset import (
    COUNTS,
    IDX_FILES,
    SUBSET_FILE,
    first_digits,
    idx_gz_bytes,
    sha256,
)

from compressai_hqa.datasets import (
    RandomCropFolder,
    list_images,
    load_face_folder,
    load_mnist,
    sample_digits,
)


def test_mnist_splits_from_the_real_gz_files(
    tmp_path, monkeypatch, full_data_root
) -> None:
    monkeypatch.setenv("COMPRESSAI_HQA_CACHE", str(tmp_path / "cache"))
    test = load_mnist(full_data_root, train=False)
    assert (
        test.images.shape == (10_000, 1, 32, 32) and test.images.dtype == torch.float32
    )
    assert test.images.min() == 0 and test.images.max() == 1
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    train = load_mnist(full_data_root, train=True, size=28)
    assert train.images.shape == (60_000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist()[:2] == [5923, 6742]
    assert (
        tmp_path / "cache"
    ).is_dir()  # the read-only .gz files were decompressed there


def test_subset_idx_files_load_as_the_shipped_digits(
    tmp_path, monkeypatch, mnist_root, mnist_subset
) -> None:
    monkeypatch.setenv("COMPRESSAI_HQA_CACHE", str(tmp_path / "cache"))
    test = load_mnist(mnist_root, train=False)
    assert test.images.shape == (COUNTS["test"], 1, 32, 32)
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    train = load_mnist(mnist_root, train=True, size=28)
    assert train.images.shape == (COUNTS["train"], 1, 28, 28)
    raw = torch.from_numpy(mnist_subset["train_images"]).unsqueeze(1)
    assert torch.equal(train.images.mul(255).round().byte(), raw)
    assert torch.equal(
        train.labels, torch.from_numpy(mnist_subset["train_labels"]).long()
    )
    assert len(list((tmp_path / "cache" / "mnist").glob("*/MNIST/raw/*-ubyte"))) == 4


def _raw_copy(mnist_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(mnist_root / "MNIST", tmp_path / "copy" / "MNIST")
    return tmp_path / "copy" / "MNIST" / "raw"


def test_corrupt_mnist_gz_files_are_clear_errors(
    tmp_path, monkeypatch, mnist_root, mnist_subset
) -> None:
    monkeypatch.setenv("COMPRESSAI_HQA_CACHE", str(tmp_path / "cache"))
    raw = _raw_copy(mnist_root, tmp_path)
    labels = raw / IDX_FILES["test_labels"]
    blob = bytearray(labels.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # the gzip CRC catches it
    labels.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt"):
        load_mnist(raw.parents[1], train=False)
    labels.write_bytes(blob[:-20])  # truncated
    with pytest.raises(ValueError, match="is corrupt"):
        load_mnist(raw.parents[1], train=False)
    labels.write_bytes(gzip.compress(b"not an IDX file"))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        load_mnist(raw.parents[1], train=False)
    labels.write_bytes(idx_gz_bytes(mnist_subset["test_labels"][:-1]))
    with pytest.raises(ValueError, match=r"holds 1000 images but .* 999 labels"):
        load_mnist(raw.parents[1], train=False)
    assert not (tmp_path / "cache").exists()  # nothing was cached


def test_shipped_subset_matches_its_recorded_sha256() -> None:
    readme = (SUBSET_FILE.parent / "README.md").read_text()
    assert f"{sha256(SUBSET_FILE)}  {SUBSET_FILE.name}" in readme


def test_shipped_subset_is_the_first_digits_of_the_real_files(
    full_data_root, mnist_subset
) -> None:
    real = first_digits(full_data_root)
    assert mnist_subset.keys() == real.keys()
    for key, array in real.items():
        assert array.shape[0] == COUNTS[key.split("_")[0]], key
        assert mnist_subset[key].dtype == np.uint8, key
        assert np.array_equal(mnist_subset[key], array), key


def test_embedded_sample_digits_are_the_first_test_digits(mnist_root) -> None:
    sample = sample_digits()
    test = load_mnist(mnist_root, train=False)
    assert torch.equal(sample.images, test.images[:100])
    assert torch.equal(sample.labels, test.labels[:100])


def test_missing_mnist_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_mnist(tmp_path)


def test_face_folder_matches_the_full_resolution_pipeline(full_data_root) -> None:
    """89x109 faces, center-cropped and resized to 64, match the 178x218 originals."""
    celeba = full_data_root / "celeba"
    half = load_face_folder(celeba / "train_89x109", size=64, limit=32)
    full = load_face_folder(celeba / "train_178x218", size=64)
    assert half.images.shape == full.images.shape == (32, 3, 64, 64)
    assert half.images.min() >= 0 and half.images.max() <= 1
    # the same faces (ids 000001-000032); JPEG and the halving differ a little
    assert (half.images - full.images).abs().mean() < 0.03
    gray = load_face_folder(celeba / "train_89x109", 32, channels=1, limit=2)
    assert gray.images.shape == (2, 1, 32, 32)


def test_random_crops_are_deterministic_per_epoch(full_data_root) -> None:
    folder = RandomCropFolder(full_data_root / "kodak", size=64, seed=3)
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
