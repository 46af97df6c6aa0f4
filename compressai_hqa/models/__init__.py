"""HQA models."""

from .hqa import HQA
from .layer import HQALayer, LayerOutput

__all__ = ["HQA", "HQALayer", "LayerOutput"]
