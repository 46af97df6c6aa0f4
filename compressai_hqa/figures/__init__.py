"""Qualitative figures of the HQA paper and the rate-perception plot.

``python -m compressai_hqa.figures {layers,interpolate,codes,diversity,
rate-perception}`` writes them as PNG; the builders are usable from Python.
"""

from .grid import GridLayout, render_grid
from .hqa import codes_figure, diversity_figure, interpolation_figure, layers_figure
from .rate_perception import rate_perception_plot

__all__ = [
    "GridLayout",
    "codes_figure",
    "diversity_figure",
    "interpolation_figure",
    "layers_figure",
    "rate_perception_plot",
    "render_grid",
]
