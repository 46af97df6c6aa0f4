"""Entropy models that turn HQA codes into bitstreams."""

from .categorical import CategoricalCoder, quantize_frequencies
from .uniform import UniformCategoricalCoder

__all__ = ["CategoricalCoder", "UniformCategoricalCoder", "quantize_frequencies"]
