"""Entropy models that turn HQA codes into bitstreams."""

from .uniform import UniformCategoricalCoder

__all__ = ["UniformCategoricalCoder"]
