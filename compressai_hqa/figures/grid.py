"""Image grids with row and column labels, of an exactly known pixel size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

__all__ = ["GridLayout", "render_grid"]

_BACKGROUND = (255, 255, 255)
_TEXT = (0, 0, 0)


@dataclass(frozen=True)
class GridLayout:
    """Geometry of an image grid.

    A grid of ``rows`` x ``cols`` cells of images (H, W) is
    ``label_width + cols * (W * scale + padding) + padding`` pixels wide and
    ``header_height + rows * (H * scale + padding) + padding`` pixels high.

    Args:
        scale: integer nearest-neighbour upscaling of every image.
        padding: white pixels between cells and around the grid.
        label_width: width of the left margin holding the row labels.
        header_height: height of the top margin holding the column labels.
    """

    scale: int = 2
    padding: int = 2
    label_width: int = 0
    header_height: int = 0

    def __post_init__(self) -> None:
        if self.scale < 1 or self.padding < 0:
            raise ValueError("scale must be >= 1 and padding >= 0")
        if self.label_width < 0 or self.header_height < 0:
            raise ValueError("label_width and header_height must be >= 0")

    def size(self, rows: int, cols: int, height: int, width: int) -> tuple[int, int]:
        """(width, height) in pixels of a grid of images (height, width)."""
        return (
            self.label_width
            + cols * (width * self.scale + self.padding)
            + self.padding,
            self.header_height
            + rows * (height * self.scale + self.padding)
            + self.padding,
        )


def render_grid(
    rows: Sequence[Tensor],
    layout: GridLayout,
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
) -> Image.Image:
    """An RGB image of a grid: ``rows[i]`` (N, C, H, W) in [0, 1] is row ``i``.

    Rows may hold fewer images than the longest row (the rest stays blank).
    Grayscale images are shown in gray levels.
    """
    if not rows:
        raise ValueError("a grid needs at least one row")
    height, width = rows[0].shape[-2:]
    cols = max(len(r) for r in rows)
    size = layout.size(len(rows), cols, height, width)
    canvas = Image.new("RGB", size, _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    step_x = width * layout.scale + layout.padding
    step_y = height * layout.scale + layout.padding
    for i, row in enumerate(rows):
        if tuple(row.shape[-2:]) != (height, width):
            raise ValueError("all images of a grid must have the same size")
        top = layout.header_height + layout.padding + i * step_y
        for j, tile in enumerate(_to_uint8(row, layout.scale)):
            left = layout.label_width + layout.padding + j * step_x
            canvas.paste(Image.fromarray(tile), (left, top))
        if row_labels is not None and layout.label_width:
            draw.multiline_text(
                (layout.padding, top), row_labels[i], fill=_TEXT, font=font
            )
    if column_labels is not None and layout.header_height:
        for j, label in enumerate(column_labels):
            left = layout.label_width + layout.padding + j * step_x
            draw.text((left, 1), label, fill=_TEXT, font=font)
    return canvas


def _to_uint8(images: Tensor, scale: int) -> list:
    """(N, C, H, W) in [0, 1] -> N arrays (H*scale, W*scale, 3) of uint8."""
    images = images.detach().float().cpu().clamp(0.0, 1.0)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    elif images.shape[1] != 3:
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return list(pixels.contiguous().numpy())
