"""Tests of compressai_hqa.layers.encoder / decoder shapes and ranges."""

from __future__ import annotations

import torch

from compressai_hqa.layers import Decoder, Encoder


def test_encoder_halves_and_decoder_doubles() -> None:
    x = torch.randn(2, 3, 16, 12)
    enc = Encoder(3, 8, hidden=16, num_layers=3)
    z = enc(x)
    assert z.shape == (2, 8, 8, 6)
    dec = Decoder(8, 3, hidden=16, num_layers=3, sigmoid=True)
    y = dec(z)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert sum(isinstance(m, torch.nn.Conv2d) for m in enc.modules()) == 3
    assert sum(isinstance(m, torch.nn.Conv2d) for m in dec.modules()) == 3


def test_resolution_keeping_layer_and_dilated_decoder() -> None:
    x = torch.randn(1, 3, 8, 8)
    z = Encoder(3, 4, hidden=8, downsample=False)(x)
    assert z.shape == (1, 4, 8, 8)
    dec = Decoder(4, 3, hidden=8, num_layers=6, upsample=False, dilations=(1, 2, 4))
    assert dec(z).shape == x.shape
    dilations = [m.dilation[0] for m in dec.modules() if isinstance(m, torch.nn.Conv2d)]
    assert dilations == [1, 1, 2, 4, 1, 1]
    unbounded = Decoder(4, 3, hidden=8)(z * 100)
    assert unbounded.abs().max() > 1  # upper layers output unbounded values
