"""HQA models."""

from .hqa import HQA
from .layer import HQALayer, LayerOutput
from .named import CelebA64HQA, MnistHQA, check_compatible

__all__ = [
    "HQA",
    "CelebA64HQA",
    "HQALayer",
    "LayerOutput",
    "MnistHQA",
    "check_compatible",
]
