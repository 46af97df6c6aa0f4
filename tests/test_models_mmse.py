"""MMSE decoders: shapes, what each kind computes, their state dict."""

from __future__ import annotations

import io

import pytest
import torch

from conftest import tiny_config

from compressai_hqa.models import HQA
from compressai_hqa.models.mmse import (
    CodeNet,
    CodeTable,
    MMSEDecoders,
    MMSESpec,
    PathDecoder,
    codes_digest,
)


@pytest.fixture
def stack() -> HQA:
    model = HQA(tiny_config(num_layers=3)).eval()
    # give the normalisers statistics, so that the path's unnormalising matters
    x = torch.rand(16, 1, 32, 32)
    with torch.no_grad():
        h = x
        for layer in model.layers:
            if layer.normalizer is not None:
                layer.normalizer.update(h)
            h = layer.encode(h)
    return model


def _codes(stack: HQA, layer: int, n: int = 4) -> torch.Tensor:
    return stack.truncate(layer).quantize(torch.rand(n, 1, 32, 32))


def test_path_of_layer_1_is_argmin_decoding(stack: HQA) -> None:
    codes = _codes(stack, 1)
    with torch.no_grad():
        expected = stack.truncate(1).decode(codes)
        got = PathDecoder(stack, 1)(codes)
    torch.testing.assert_close(got, expected)


def test_path_is_the_stack_decoding_path_without_requantisation(stack: HQA) -> None:
    codes = _codes(stack, 3)
    with torch.no_grad():
        h = stack.layers[2].decode(stack.layers[2].embed(codes))
        h = stack.layers[0].decode(stack.layers[1].decode(h))
        got = PathDecoder(stack, 3)(codes)
        argmin = stack.decode(codes)
    torch.testing.assert_close(got, h)
    assert not torch.allclose(got, argmin)  # argmin re-quantises on the way


def test_path_weights_are_a_trainable_copy(stack: HQA) -> None:
    for p in stack.parameters():
        p.requires_grad_(False)
    path = PathDecoder(stack, 2)
    assert all(p.requires_grad for p in path.parameters())
    before = stack.layers[0].decoder.net[0].weight.clone()
    with torch.no_grad():
        for p in path.parameters():
            p.add_(1.0)
    torch.testing.assert_close(stack.layers[0].decoder.net[0].weight, before)


@pytest.mark.parametrize("kind", ["path", "net", "table"])
def test_shapes_and_crop(stack: HQA, kind: str) -> None:
    decoders = MMSEDecoders(stack, {2: kind}).eval()
    codes = torch.randint(0, 16, (3, 5, 7))
    out = decoders(codes, 2)
    assert out.shape == (3, 1, 20, 28)
    assert decoders(codes, 2, size=(19, 26)).shape == (3, 1, 19, 26)
    if kind != "path":  # sigmoid or means of images
        assert out.min() >= 0 and out.max() <= 1


def test_table_tiles_its_patches() -> None:
    table = CodeTable(3, 1, 2)
    table.means.copy_(torch.arange(12.0).view(3, 1, 2, 2))
    codes = torch.tensor([[[0, 2], [1, 0]]])
    expected = torch.tensor(
        [[0.0, 1, 8, 9], [2, 3, 10, 11], [4, 5, 0, 1], [6, 7, 2, 3]]
    ).view(1, 1, 4, 4)
    torch.testing.assert_close(table(codes), expected)


def test_net_upsamples_to_the_factor() -> None:
    net = CodeNet(16, 3, 8, width=32)
    assert net(torch.zeros(2, 1, 2, dtype=torch.long)).shape == (2, 3, 8, 16)
    with pytest.raises(ValueError, match="power of two"):
        CodeNet(16, 1, 6)


@pytest.mark.parametrize(
    ("codes", "error"),
    [
        (torch.zeros(2, 4, 4), TypeError),
        (torch.zeros(4, 4, dtype=torch.long), ValueError),
        (torch.full((1, 4, 4), 16), ValueError),
        (torch.full((1, 4, 4), -1), ValueError),
    ],
)
def test_bad_indices(stack: HQA, codes: torch.Tensor, error: type) -> None:
    decoders = MMSEDecoders(stack, {3: "path", 1: "table"})
    with pytest.raises(error):
        decoders(codes, 3)
    with pytest.raises(KeyError, match="layer 2"):
        decoders.layer(2)


def test_spec_and_layer_checks(stack: HQA) -> None:
    with pytest.raises(ValueError, match="kind"):
        MMSESpec("mean")
    with pytest.raises(ValueError, match="layer"):
        MMSEDecoders(stack, {4: "path"})
    with pytest.raises(ValueError, match="at least one"):
        MMSEDecoders(stack, {})


def _round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_state_dict_round_trip_in_float16(stack: HQA) -> None:
    decoders = MMSEDecoders(stack, {1: "path", 2: MMSESpec("net", 32), 3: "table"})
    decoders.layer(3).means.uniform_()
    state = {
        k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v
        for k, v in decoders.state_dict().items()
    }
    loaded = MMSEDecoders.from_state_dict(stack, _round_trip(state))
    assert loaded.specs == decoders.specs and not loaded.training
    for layer in (1, 2, 3):
        codes = _codes(stack, layer)
        with torch.no_grad():
            a, b = decoders(codes, layer), loaded(codes, layer)
        torch.testing.assert_close(a, b, atol=2e-3, rtol=0)
    # a truncated stack gets the decoders of its layers only
    assert MMSEDecoders.from_state_dict(stack.truncate(2), state).layers == (1, 2)


def test_state_dict_refuses_another_stack(stack: HQA) -> None:
    state = MMSEDecoders(stack, {2: "path"}).state_dict()
    other = HQA(tiny_config(num_layers=3)).eval()
    with pytest.raises(ValueError, match="differ"):
        MMSEDecoders.from_state_dict(other, state)
    MMSEDecoders.from_state_dict(other, state, check=False)
    with pytest.raises(ValueError, match="not an MMSE"):
        MMSEDecoders.from_state_dict(stack, stack.state_dict())
    decoders = MMSEDecoders(stack, {2: "path"})
    with pytest.raises(ValueError, match="other MMSE decoders"):
        decoders.load_state_dict(MMSEDecoders(stack, {2: "net"}).state_dict())


def test_codes_digest_ignores_decoders_and_upper_layers(stack: HQA) -> None:
    digest = codes_digest(stack, 2)
    with torch.no_grad():
        stack.layers[1].decoder.net[0].weight.add_(1.0)
        stack.layers[2].encoder.net[0].weight.add_(1.0)
    assert codes_digest(stack, 2) == digest
    with torch.no_grad():
        stack.layers[1].codebook.add_(1.0)
    assert codes_digest(stack, 2) != digest
