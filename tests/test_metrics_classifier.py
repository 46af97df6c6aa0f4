"""Tests of the shipped MNIST classifier (compressai_hqa.metrics.classifier)."""

from __future__ import annotations

import pytest
import torch

from compressai_hqa.datasets import load_mnist, sample_digits
from compressai_hqa.metrics import classifier as classifier_module
from compressai_hqa.metrics.classifier import (
    MNISTClassifier,
    classification_error,
    load_classifier,
)


def test_shipped_classifier_is_99_percent_accurate_on_the_mnist_test_set(
    full_data_root,
) -> None:
    test = load_mnist(full_data_root, train=False)
    assert len(test) == 10_000
    error = classification_error(load_classifier(), test.images, test.labels)
    assert error <= 0.01, f"test accuracy {1 - error:.4f}"


def test_small_and_loadable_without_pickle() -> None:
    model = load_classifier()
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) < 100_000
    digits = sample_digits()
    assert classification_error(model, digits.images, digits.labels) <= 0.02


def test_corrupt_weights_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(classifier_module, "CLASSIFIER_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="corrupt"):
        load_classifier()


def test_wrong_inputs_are_clear_errors() -> None:
    model = MNISTClassifier().eval()
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        model(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="labels"):
        classification_error(model, torch.rand(3, 1, 32, 32), torch.zeros(2))
