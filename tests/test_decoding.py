"""The Decoding value: validation, seeds and streams, the modes a layer refuses,
and the same draws as the loose-argument API it replaced."""

from __future__ import annotations

import argparse

from pathlib import Path

import numpy as np
import pytest
import torch

from compressai_hqa import DECODE_MODES, HQA, Decoding, HQAConfig, LayerConfig
from compressai_hqa.codec.cli import build_parser
from compressai_hqa.eval_model.__main__ import _add_options
from compressai_hqa.eval_model.codes import decode_spread
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate
from compressai_hqa.zoo.pretrained import load_weights, shipped_weights_path

DATA = Path(__file__).resolve().parent / "data"


def _choices(parser, *argv: str, option: str = "--decode") -> tuple[str, ...]:
    for action in parser._subparsers._group_actions[0].choices[argv[0]]._actions:
        if option in action.option_strings:
            return tuple(action.choices)
    raise AssertionError(f"{option} not found")


def test_decoding_is_validated_once_and_compares_without_its_generator() -> None:
    assert DECODE_MODES == ("argmin", "sample", "average", "mmse")
    assert Decoding.of(None) == Decoding() and Decoding.of("sample").mode == "sample"
    d = Decoding("average", 0.5, 3, seed=1)
    assert Decoding.of(d) is d and d == Decoding("average", 0.5, 3, seed=1)
    g = torch.Generator()
    assert Decoding("sample", generator=g) == Decoding("sample")
    assert hash(Decoding("sample", generator=g)) == hash(Decoding("sample"))
    with pytest.raises(ValueError, match="mode must be one of"):
        Decoding("mean")
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            Decoding("sample", bad)
    with pytest.raises(ValueError, match="num_samples"):
        Decoding("average", num_samples=0)
    with pytest.raises(ValueError, match="seed or a generator"):
        Decoding("sample", seed=0, generator=g)
    with pytest.raises(TypeError, match="Decoding or a mode name"):
        Decoding.of(3)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        d.mode = "argmin"  # type: ignore[misc]


def test_a_seed_repeats_and_a_bound_decoding_continues_its_stream() -> None:
    logits = torch.randn(4, 5, 16)
    seeded = Decoding("sample", seed=3)
    assert torch.equal(seeded.codes(logits), seeded.codes(logits))
    bound = seeded.bound()
    first, second = bound.codes(logits), bound.codes(logits)
    assert torch.equal(first, seeded.codes(logits))
    assert not torch.equal(first, second)  # 320 draws over 16 codes
    assert Decoding("argmin").codes(logits).equal(logits.argmax(-1))
    with pytest.raises(ValueError, match="picks no codes"):
        Decoding("average").codes(logits)


def test_every_command_offers_exactly_the_decoding_modes() -> None:
    assert _choices(build_parser(), "decompress") == DECODE_MODES
    parser = argparse.ArgumentParser()
    _add_options(parser)
    decode = [a for a in parser._actions if "--decode" in a.option_strings]
    assert tuple(decode[0].choices) == DECODE_MODES


def _stack(name: str, dim: int, *layers: dict) -> HQA:
    """A seeded stack of small layers (``layers``: each one's switches)."""
    torch.manual_seed(0)
    size = dict(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=dim)
    config = HQAConfig(
        name=name,
        in_channels=1,
        image_size=32,
        layers=tuple(LayerConfig(**size, **switches) for switches in layers),
    )
    return HQA(config).eval()


def test_an_ema_codebook_refuses_to_draw() -> None:
    """Its posterior is a point mass: drawing from it used to return the argmin
    code silently."""
    model = _stack("tiny-ema", 4, {"quantizer": "ema"}, {"quantizer": "ema"})
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        indices = model.quantize(x)
        assert model.decode(indices).shape == (2, 1, 32, 32)
        for mode in ("sample", "average"):
            with pytest.raises(ValueError, match=r"EMA codebook.*'argmin' only"):
                model.decode(indices, mode)
            with pytest.raises(ValueError, match="EMA codebook"):
                model.quantize(x, mode)
        with pytest.raises(ValueError, match="EMA codebook"):
            model.reconstruct(x, sample_top=True)


def _ce_model() -> HQA:
    """The seeded stack of the script that wrote ``decoding_reference.pt``."""
    return _stack("tiny-ce", 8, {}, {"target": "ce"}, {"target": "ce"})


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def _outputs() -> dict[str, torch.Tensor]:
    """What the reference script computed, through the Decoding API."""
    digits = np.load(DATA / "mnist_subset.npz")["test_images"][:6]
    x = torch.from_numpy(digits).float().div(255).unsqueeze(1)
    path = shipped_weights_path("hqa-mnist-0da85963.pth")
    model = HQA.from_state_dict(load_weights(path)).eval()
    size = x.shape[-2:]
    idx = model.quantize(x)
    out = model.compress(x)
    got: dict[str, torch.Tensor] = {}
    got["sample"] = model.decode(idx, Decoding("sample", seed=1), size)
    got["sample_t1.5"] = model.decode(idx, Decoding("sample", 1.5, seed=1), size)
    got["average3"] = model.decode(idx, Decoding("average", 0.7, 3, seed=2), size)
    got["average_default"] = model.decode(
        idx, Decoding("average", generator=_g(2)), size
    )
    got["reconstruct_top"] = model.reconstruct(
        x, Decoding("sample", 0.8, 2, seed=3), sample_top=True
    )
    got["reconstruct_average"] = model.reconstruct(
        x, Decoding("average", num_samples=2, seed=3)
    )
    got["decompress"] = model.decompress(
        out["strings"], out["shape"], Decoding("sample", 1.2, seed=4)
    )["x_hat"]
    # what decompress_images(..., batch_size=4) computed then: batches of 4 images
    # drawing from one stream (the codec now decodes in fixed chunks of its own,
    # tests/test_codec_batching.py)
    bound = Decoding("sample", 1.1, seed=5).bound()
    got["decompress_images"] = torch.cat(
        [model.decode(idx[i : i + 4], bound, size) for i in range(0, len(idx), 4)]
    )
    spread = decode_spread(
        model, x, 3, Decoding("sample", seed=6), batch_size=4, sample_top=True
    )
    got["spread"] = torch.tensor(spread)
    images = EvalImages("digits", x, tuple(str(i) for i in range(len(x))))
    for name, kw in {
        "eval_sample": dict(decoding=Decoding("sample", 1.3, seed=7)),
        "eval_average_top": dict(
            decoding=Decoding("average", num_samples=2, seed=0), sample_top=True
        ),
        "eval_estimate": dict(
            decoding=Decoding("sample", seed=8), entropy_estimation=True
        ),
    }.items():
        result = evaluate(model, images, EvalOptions(batch_size=4, **kw), keep=6)
        got[name] = torch.stack(result.reconstructions)
    tiny = _ce_model()
    tidx = tiny.quantize(x)
    got["ce_sample"] = tiny.decode(tidx, Decoding("sample", 1.4, seed=9), size)
    got["ce_average"] = tiny.decode(tidx, Decoding("average", 1.0, 3, seed=10), size)
    return got


def test_stochastic_decodes_draw_the_numbers_the_loose_api_drew() -> None:
    """Bit-identical to ``tests/data/decoding_reference.pt``, written by the
    loose-argument API (see ``tests/data/README.md``): published
    seeds still give the published decodes."""
    torch.set_num_threads(1)
    reference = torch.load(DATA / "decoding_reference.pt", weights_only=True)
    got = _outputs()
    assert set(got) == set(reference)
    for name, expected in reference.items():
        assert torch.equal(got[name], expected), name
    # the reference is not degenerate: the seeds and modes give different images
    assert not torch.equal(reference["sample"], reference["sample_t1.5"])
    assert not torch.equal(reference["ce_sample"], reference["ce_average"])
