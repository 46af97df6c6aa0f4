"""A small MNIST classifier, to score the reconstructions of a codec.

The HQA paper measures how much of a digit's identity survives compression with
the error of a pretrained MNIST classifier on the reconstructions of the test set
("class-error"). :class:`MNISTClassifier` is that classifier: a small CNN trained
by ``examples/train_mnist_classifier.py`` on the MNIST training split exactly as
:func:`compressai_hqa.datasets.load_mnist` returns it (32x32, pixels in [0, 1]).
Its weights ship with the package (``assets/mnist_classifier.pt``, SHA-256
pinned); see ``assets/README.md`` for its test accuracy and how it was trained.
"""

from __future__ import annotations

from importlib import resources

import torch
import torch.nn as nn

from torch import Tensor

from compressai_hqa.files import load_torch_file

__all__ = [
    "CLASSIFIER_FILE",
    "CLASSIFIER_SHA256",
    "MNISTClassifier",
    "classification_error",
    "load_classifier",
    "predict",
]

#: The shipped weights, inside the package's ``assets`` folder.
CLASSIFIER_FILE = "mnist_classifier.pt"
#: SHA-256 of the shipped weights.
CLASSIFIER_SHA256 = "3549946646dddcb38df9bacdfdf52bdd64a4115e959eda7d705b21073dedd35e"


class MNISTClassifier(nn.Module):
    """Three 3x3 conv + max-pool stages, dropout, two linear layers (89k weights).

    Args:
        dropout: dropout probability before each linear layer (training only).
    """

    def __init__(self, dropout: float = 0.25) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 16x16
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 8x8
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 4x4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(64 * 4 * 4, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(64, 10),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, 10) of images (B, 1, 32, 32) in [0, 1]."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 32, 32):
            raise ValueError(
                f"the MNIST classifier takes (B, 1, 32, 32) images, "
                f"got {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))


def load_classifier(device: torch.device | str = "cpu") -> MNISTClassifier:
    """The shipped classifier in eval mode (its file's SHA-256 is checked).

    Raises:
        RuntimeError: the shipped file is corrupt.
    """
    path = resources.files("compressai_hqa") / "assets" / CLASSIFIER_FILE
    with resources.as_file(path) as local:
        state_dict = load_torch_file(local, sha256=CLASSIFIER_SHA256)
    model = MNISTClassifier()
    model.load_state_dict(state_dict)
    return model.to(device).eval()


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Predicted labels (N,) of images (N, 1, 32, 32) in [0, 1], on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    out = [
        model(images[i : i + batch_size].to(device)).argmax(dim=1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def classification_error(
    model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000
) -> float:
    """Fraction of ``images`` the classifier gets wrong (0 = all right)."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"need as many labels as images (> 0), got {len(images)}, {len(labels)}"
        )
    predicted = predict(model, images, batch_size)
    return (predicted != labels.cpu()).float().mean().item()
