"""Model zoo: HQA stacks by model family and layer, optionally with trained weights."""

from .image import (
    hqa,
    hqa_any,
    hqa_celeba64,
    hqa_mnist,
    layer_for_quality,
    zoo_function,
)
from .pretrained import PretrainedUnavailableError, load_weights

__all__ = [
    "PretrainedUnavailableError",
    "hqa",
    "hqa_any",
    "hqa_celeba64",
    "hqa_mnist",
    "layer_for_quality",
    "load_weights",
    "zoo_function",
]
