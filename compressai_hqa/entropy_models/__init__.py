"""Entropy models that turn HQA codes into bitstreams."""

from .categorical import CategoricalCoder, quantize_frequencies
from .context import ContextModel
from .context_coder import ContextCoder
from .uniform import UniformCategoricalCoder

__all__ = [
    "CategoricalCoder",
    "ContextCoder",
    "ContextModel",
    "UniformCategoricalCoder",
    "quantize_frequencies",
]
