"""The qualitative figures of the HQA paper (see :class:`~compressai_hqa.HQA`).

Table 2 (reconstructions at every layer), Tables 4 and 8 (interpolation of
top-layer ``z_e``), Figure 4 (decodes of all top-layer codes) and Figure 6 /
Table 6 (stochastic decodes and their average), from any HQA stack, decoded by
any mode of :data:`~compressai_hqa.decoding.DECODE_MODES` (``"mmse"`` needs the
model's MMSE decoders, :meth:`~compressai_hqa.HQA.set_mmse`).
"""

from __future__ import annotations

import math

from collections.abc import Sequence

import torch

from PIL import Image
from torch import Tensor

from compressai_hqa.decoding import SEEDED_SAMPLING, Decoding
from compressai_hqa.figures.grid import GridLayout, render_grid
from compressai_hqa.models import HQA

__all__ = [
    "codes_figure",
    "diversity_figure",
    "interpolation_figure",
    "layers_figure",
]


@torch.no_grad()
def layers_figure(
    model: HQA,
    images: Tensor,
    layout: GridLayout,
    layers: Sequence[int] | None = None,
    decoding: Decoding | str = "argmin",
) -> Image.Image:
    """Row 1: the images; then one row per layer: their reconstructions.

    Each row is labelled with the layer and its rate in bits per image
    (``model.truncate(l).bits(H, W)``).

    Args:
        model: the HQA stack.
        images: (N, C, H, W) in [0, 1].
        layout: grid geometry.
        layers: the layers to show (default: all, bottom first).
        decoding: how the codes are decoded (one random stream for the figure).
    """
    height, width = images.shape[-2:]
    layers = _layers(model, layers)
    decoding = Decoding.of(decoding).bound()
    rows, labels = [images], ["original"]
    for layer in layers:
        m = model.truncate(layer).eval()
        rows.append(m.decode(m.quantize(images), decoding, (height, width)))
        labels.append(f"layer {layer}\n{m.bits(height, width)} bits")
    return render_grid(rows, layout, labels)


@torch.no_grad()
def interpolation_figure(
    model: HQA,
    first: Tensor,
    second: Tensor,
    layout: GridLayout,
    steps: int = 8,
    layers: Sequence[int] | None = None,
    decoding: Decoding | str = "argmin",
) -> Image.Image:
    """Linear interpolation of the top-layer ``z_e`` between two images.

    One row per layer ``l`` (the stack truncated at ``l``): the first image,
    ``steps`` decodes of the argmin codes of ``(1 - t) z_e(a) + t z_e(b)`` for
    ``t`` evenly spaced in [0, 1], and the second image.

    Args:
        model: the HQA stack.
        first, second: images (C, H, W) in [0, 1].
        layout: grid geometry.
        steps: interpolation points (>= 2), including both ends.
        layers: the layers to show (default: all).
        decoding: how the codes are decoded (one random stream for the figure).
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    decoding = Decoding.of(decoding).bound()
    height, width = first.shape[-2:]
    t = torch.linspace(0.0, 1.0, steps, device=first.device).view(-1, 1, 1, 1)
    rows, labels = [], []
    for layer in _layers(model, layers):
        m = model.truncate(layer).eval()
        z_a, z_b = m.encode(torch.stack([first, second])).unbind(0)
        z = (1 - t) * z_a + t * z_b
        decoded = m.decode(m.top.quantize(z), decoding, (height, width))
        rows.append(torch.cat([first[None], decoded, second[None]]))
        labels.append(f"layer {layer}\n{m.bits(height, width)} bits")
    return render_grid(rows, layout, labels)


@torch.no_grad()
def codes_figure(
    model: HQA,
    layout: GridLayout,
    layer: int | None = None,
    size: int | None = None,
    columns: int | None = None,
    decoding: Decoding | str = "argmin",
) -> Image.Image:
    """Decodes of every code of layer ``layer``'s codebook, in index order.

    For an image ``size`` whose layer-``layer`` code grid is 1x1 (e.g. the top
    MNIST layer), each cell is the decode of one code; for larger grids, each
    cell decodes the grid filled with one code.

    Args:
        model: the HQA stack.
        layout: grid geometry.
        layer: whose codebook (default: the top layer).
        size: image side (default: the config's ``image_size``).
        columns: cells per row (default: ceil(sqrt(K))).
        decoding: how the codes are decoded (``"mmse"``: the mean image of
            each code's region of the training data, as the decoder learnt it).
    """
    m = model.truncate(model.num_layers if layer is None else layer).eval()
    size = size or model.config.image_size
    k = m.codebook_size
    columns = columns or math.ceil(math.sqrt(k))
    decoded = m.decode(m.code_grids(size, size), decoding, (size, size))
    rows = [decoded[i : i + columns] for i in range(0, k, columns)]
    return render_grid(rows, layout)


@torch.no_grad()
def diversity_figure(
    model: HQA,
    images: Tensor,
    layout: GridLayout,
    samples: int = 6,
    average_of: int = 16,
    layer: int | None = None,
    decoding: Decoding = SEEDED_SAMPLING,
    mmse: bool = False,
) -> Image.Image:
    """Stochastic decodes of the same codes, and their average.

    One row per image: the image, the deterministic (argmin) decode, with
    ``mmse`` the MMSE decode, ``samples`` stochastic decodes (each lower layer
    samples its codes from its posterior, paper Algorithm 3) and the mean of
    ``average_of`` stochastic decodes.

    Args:
        model: the HQA stack.
        images: (N, C, H, W) in [0, 1].
        layout: grid geometry; with ``header_height`` > 0 columns are labelled.
        samples: stochastic decodes shown.
        average_of: decodes averaged in the last column.
        layer: truncate the stack at this layer (default: top).
        decoding: a stochastic decoding: the temperature and random source of
            every draw (default: a CPU generator seeded with 0); one stream
            serves the whole figure.
        mmse: add the column of the MMSE decode (the model's MMSE decoders).

    Raises:
        ValueError: ``decoding`` draws nothing, or ``mmse`` without MMSE
            decoders.
    """
    if not decoding.stochastic:
        raise ValueError(f"decoding must be stochastic, got {decoding.mode!r}")
    m = model.truncate(model.num_layers if layer is None else layer).eval()
    height, width = images.shape[-2:]
    sampled = decoding.bound().replace(mode="sample")
    indices = m.quantize(images)
    size = (height, width)
    columns = [images, m.decode(indices, size=size)]
    labels = ["original", "argmin"]
    if mmse:
        columns.append(m.decode(indices, "mmse", size))
        labels.append("mmse")
    columns += [m.decode(indices, sampled, size) for _ in range(samples)]
    average = sampled.replace(mode="average", num_samples=average_of)
    columns.append(m.decode(indices, average, size))
    grid = torch.stack(columns, dim=1)  # (N, columns, C, H, W)
    bits = m.bits(height, width)
    labels += [f"sample {i + 1}" for i in range(samples)]
    labels.append(f"mean of {average_of}")
    return render_grid(
        list(grid.unbind(0)),
        layout,
        row_labels=[f"{bits} bits"] * len(images),
        column_labels=labels,
    )


def _layers(model: HQA, layers: Sequence[int] | None) -> list[int]:
    layers = list(range(1, model.num_layers + 1) if layers is None else layers)
    for layer in layers:
        if not 1 <= layer <= model.num_layers:
            raise ValueError(f"layer must be in [1, {model.num_layers}], got {layer}")
    return layers
