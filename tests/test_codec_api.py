"""Tests of compressai_hqa.codec.api: images to .hqa files and back, learned priors."""

from __future__ import annotations

import copy

from pathlib import Path

import pytest
import torch

from conftest import tiny_config

from compressai_hqa import HQA, CorruptStreamError, zoo
from compressai_hqa.codec import (
    WeightsMismatchError,
    compress_images,
    decompress_images,
    estimate_code_priors,
    read_codes,
    weights_fingerprint,
)
from compressai_hqa.codec.format import unpack
from compressai_hqa.datasets import load_mnist


@pytest.fixture(scope="module")
def tiny() -> HQA:
    torch.manual_seed(0)
    return HQA(tiny_config(num_layers=2)).eval()


def test_the_learned_prior_beats_the_uniform_one_on_real_test_codes(
    mnist_root: Path,
) -> None:
    """Same codes (so the same reconstructions), fewer bits, at every layer."""
    stack = zoo.hqa(pretrained=True)
    assert sorted(stack.code_priors) == [1, 2, 3, 4, 5]  # shipped with the weights
    digits = load_mnist(mnist_root, train=False).images[:1000]
    for layer in range(1, 6):
        model = stack.truncate(layer).eval()
        sizes = {}
        codes = None
        for prior in ("uniform", "learned"):
            data = compress_images(model, digits.unbind(0), prior)
            header, decoded = read_codes(data, model)
            codes = torch.stack(decoded) if codes is None else codes
            header, decoded = read_codes(data, model)
            assert header.prior == prior and torch.equal(torch.stack(decoded), codes)
            sizes[prior] = len(unpack(data)[1])
        assert sizes["uniform"] == 1000 * model.bits(32, 32) // 8  # bit-packed
        # layers 1-2 use their codes unevenly (4.9 and 6.1 bits of entropy per
        # 8-bit code, zoo/results/v3/code-usage-test.json): at least 10 % saved;
        # layers 3-5 use them nearly uniformly (7.8-7.9 bits): only a few percent
        bound = 0.9 if layer <= 2 else 1.0
        assert sizes["learned"] < bound * sizes["uniform"], (layer, sizes)
        ideal = model.coder("learned").bits(codes) / 8
        assert ideal <= sizes["learned"] <= ideal + 8 + 4, (layer, sizes, ideal)


def test_estimated_priors_are_floored_frequencies_of_the_codes(tiny: HQA) -> None:
    images = torch.rand(20, 1, 16, 16)
    priors = estimate_code_priors(tiny, images, batch_size=7)
    assert sorted(priors) == [1, 2]
    for layer, freqs in priors.items():
        with torch.no_grad():
            codes = tiny.truncate(layer).quantize(images).flatten()
        used = set(codes.tolist())
        assert sum(freqs) == 65536 and min(freqs) == 1
        assert all(freqs[k] > 1 for k in used)


def test_fingerprints_identify_the_weights_and_prior(tiny: HQA) -> None:
    model = copy.deepcopy(tiny)
    base = weights_fingerprint(model)
    assert len(base) == 16 and base == weights_fingerprint(copy.deepcopy(model))
    assert weights_fingerprint(model.truncate(1)) != base
    model.set_code_prior(2, estimate_code_priors(model, torch.rand(4, 1, 8, 8))[2])
    assert weights_fingerprint(model) == base  # the uniform prior ignores it
    learned = weights_fingerprint(model, "learned")
    assert learned != base
    with torch.no_grad():
        model.layers[0].decoder.net[0].bias[0] += 1e-6
    assert weights_fingerprint(model) != base
    assert weights_fingerprint(model, "learned") != learned


def test_files_are_tied_to_their_weights(tiny: HQA) -> None:
    images = [torch.rand(1, 12, 10), torch.rand(1, 12, 10), torch.rand(1, 3, 5)]
    data = compress_images(tiny, images)
    with torch.no_grad():
        expected = tiny.decompress(tiny.compress(torch.stack(images[:2]))["strings"],
                                   (12, 10))["x_hat"]  # fmt: skip
    decoded = decompress_images(data, tiny)
    assert [tuple(x.shape) for x in decoded] == [(1, 12, 10), (1, 12, 10), (1, 3, 5)]
    # the codec codes in fixed chunks on one thread; these tiny images' decodes
    # agree with one batch to float precision
    assert torch.allclose(torch.stack(decoded[:2]), expected, atol=1e-5)
    other = HQA(tiny_config(num_layers=2)).eval()
    with pytest.raises(WeightsMismatchError, match="other weights"):
        decompress_images(data, other)
    assert len(decompress_images(data, other, force=True)) == 3
    with pytest.raises(WeightsMismatchError, match="layer"):
        decompress_images(data, tiny.truncate(1), force=True)
    with pytest.raises(ValueError, match="no learned prior"):
        compress_images(tiny, images, "learned")
    assert issubclass(WeightsMismatchError, CorruptStreamError)


def test_bad_images_are_refused(tiny: HQA) -> None:
    for images, error, words in [
        ([], ValueError, "no images"),
        ([torch.rand(3, 8, 8)], ValueError, "1-channel"),
        ([torch.rand(8, 8)], ValueError, "(C, H, W)"),
        ([torch.full((1, 8, 8), float("nan"))], ValueError, "NaN"),
        ([torch.zeros(1, 8, 8, dtype=torch.uint8)], TypeError, "floating point"),
        ([torch.rand(1, 0, 8)], ValueError, "cannot be stored"),
        ([torch.rand(1, 8, 8) * 255], ValueError, "divide 8-bit pixel values by 255"),
        ([torch.rand(1, 8, 8) - 0.5], ValueError, "found values from -0"),
    ]:
        with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
            compress_images(tiny, images)
