"""How much memory an HQA stack needs to encode or decode one image, estimated.

The estimate walks the stack's modules as :meth:`HQAStack.quantize` and
:meth:`HQAStack.decode` run them, propagating the activations' shapes, and takes
the largest sum of the tensors alive at one step: the tensors a caller holds
(the image, the layer input, the codes) plus an operation's input and output.
The posterior of a quantiser (K logits per code position, with two temporaries
in ``"argmin"`` mode and four in ``"sample"`` mode) is usually the largest. The
sum (convolutions counted twice: oneDNN may reorder their input and output) is
multiplied by :data:`SAFETY`, and a chunk of images adds :data:`OVERHEAD` once
(oneDNN's scratch buffers and kernels, the allocator's arenas). On the MNIST
stack, the measured peak memory of encoding and decoding one image (64 to 1024
pixels square, 16 digits of 32x32) is at most 0.57 of the estimate
(``benchmarks/codec_memory.py``, ``benchmarks/results/codec_memory.txt``).
"""

from __future__ import annotations

import math

import torch.nn as nn

from compressai_hqa.models.stack import HQAStack

__all__ = ["OVERHEAD", "SAFETY", "decode_bytes", "encode_bytes"]

#: Factor applied to the walk's count (see the module docstring).
SAFETY = 2.0
#: Bytes added once per chunk of images (not by :func:`encode_bytes` and
#: :func:`decode_bytes`, which are per image): oneDNN's scratch buffers and
#: kernels, the allocator's arenas (measured: 6 to 10 MB for the smallest images).
OVERHEAD = 16 << 20
# Logit-sized tensors alive at once while a quantiser picks codes.
_LOGIT_COPIES = {"argmin": 3, "sample": 5}
_INDEX_BYTES = 8  # int64 code indices


def encode_bytes(model: HQAStack, height: int, width: int) -> int:
    """Estimated peak bytes of ``model.quantize`` on one ``height x width`` image.

    Args:
        model: the stack (truncated at the layer whose codes are computed).
        height, width: the image size in pixels.

    Returns:
        Bytes, :data:`SAFETY` included (the image itself too).
    """
    f = model.downsampling
    h, w = math.ceil(height / f) * f, math.ceil(width / f) * f
    channels = model.config.in_channels
    image = channels * (height * width + h * w)  # the image and its padded copy
    peak, held = image, image
    for i, layer in enumerate(model.layers):
        copy = 0 if i == 0 else channels * h * w  # the normalised input
        net_peak, (channels, h, w) = _walk(layer.encoder.net, channels, h, w)
        peak = max(peak, held + copy + net_peak)
        held = channels * h * w  # z_e, the next layer's input
    top = model.layers[-1]
    peak = max(peak, 2 * held + _LOGIT_COPIES["argmin"] * top.codebook_size * h * w)
    return _bytes(model, peak)


def decode_bytes(model: HQAStack, height: int, width: int, mode: str = "argmin") -> int:
    """Estimated peak bytes of ``model.decode`` of one ``height x width`` image.

    Args:
        model: the stack (truncated at the layer whose codes are decoded).
        height, width: the image size in pixels.
        mode: ``"argmin"`` or ``"sample"`` re-quantisation (``"average"``
            holds one more image-sized sum: counted as ``"sample"``).

    Returns:
        Bytes, :data:`SAFETY` included (the decoded image too).
    """
    copies = _LOGIT_COPIES["argmin" if mode == "argmin" else "sample"]
    h, w = model.latent_shape(height, width)
    layers = list(model.layers)
    top = layers[-1]
    channels = top.config.codebook_dim
    codes = _INDEX_BYTES // 4 * h * w
    net_peak, (channels, h, w) = _walk(top.decoder.net, channels, h, w)
    peak = codes + net_peak + 2 * channels * h * w  # + the unnormalised copy
    for i in range(len(layers) - 2, -1, -1):
        layer, above = layers[i], layers[i + 1]
        held = channels * h * w  # the estimate of layer i's z_e
        logits = copies * layer.codebook_size * h * w
        peak = max(peak, held + channels * h * w + logits)  # + a flat copy
        codes = _INDEX_BYTES // 4 * h * w
        dim = layer.config.codebook_dim
        net_peak, (channels, h, w) = _walk(layer.decoder.net, dim, h, w)
        peak = max(peak, held + codes + net_peak + 2 * channels * h * w)
        if above.target == "ce":  # logits over the lower codes, made float
            peak = max(peak, held + 2 * layer.codebook_size * h * w)
    return _bytes(model, peak)


def _walk(
    net: nn.Module, channels: int, height: int, width: int
) -> tuple[int, tuple[int, int, int]]:
    """The largest input + output elements of the steps of a Sequential of
    convolutions, activations and upsamplings, and the output shape (C, H, W)."""
    peak = 0
    shape = (channels, height, width)
    for module in net:
        if isinstance(module, nn.Dropout):
            continue  # the identity in eval mode
        if isinstance(module, nn.Conv2d):
            out = (module.out_channels, *_conv_size(module, shape[1:]))
        elif isinstance(module, nn.Upsample):
            scale = int(module.scale_factor)  # type: ignore[arg-type]
            out = (shape[0], shape[1] * scale, shape[2] * scale)
        else:  # element-wise: Mish, Sigmoid
            out = shape
        step = math.prod(shape) + math.prod(out)
        if isinstance(module, nn.Conv2d):
            step *= 2  # oneDNN may reorder input and output to blocked layouts
        peak = max(peak, step)
        shape = out
    return peak, shape


def _conv_size(conv: nn.Conv2d, size: tuple[int, int]) -> tuple[int, int]:
    out = []
    for n, k, s, p, d in zip(
        size, conv.kernel_size, conv.stride, conv.padding, conv.dilation, strict=True
    ):
        out.append((n + 2 * int(p) - d * (k - 1) - 1) // s + 1)
    return out[0], out[1]


def _bytes(model: HQAStack, elements: int) -> int:
    item = model.top.codebook.element_size()
    return math.ceil(SAFETY * elements * max(item, 4))
