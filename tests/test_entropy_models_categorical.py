"""Tests of compressai_hqa.entropy_models.categorical: learnt priors, safe decoding."""

from __future__ import annotations

import math
import random

import pytest
import torch

from compressai_hqa import CorruptStreamError
from compressai_hqa.entropy_models import (
    CategoricalCoder,
    UniformCategoricalCoder,
    quantize_frequencies,
)


def test_quantized_frequencies_are_floored_proportional_and_deterministic() -> None:
    counts = [0, 1, 10, 1000, 50000, 0, 7, 3]
    freqs = quantize_frequencies(counts)
    assert sum(freqs) == 65536 and min(freqs) == 1
    assert freqs[0] == freqs[5] == 1  # unused codes stay codable
    assert freqs == quantize_frequencies(list(counts))
    assert max(freqs) == freqs[4] and freqs[3] > freqs[2] > freqs[1]
    assert quantize_frequencies([0, 0, 0, 0]) == (16384,) * 4
    with pytest.raises(ValueError):
        quantize_frequencies([1])
    with pytest.raises(ValueError):
        quantize_frequencies([1, -1])


def test_learned_prior_round_trips_below_the_uniform_rate() -> None:
    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.25, 0.125] + [0.125 / 13] * 13)
    symbols = torch.multinomial(probs, 4000, replacement=True, generator=g)
    coder = CategoricalCoder(
        quantize_frequencies(torch.bincount(symbols, minlength=16))
    )
    stream = coder.encode(symbols)
    assert coder.decode(stream, len(symbols)) == symbols.tolist()
    assert len(stream) * 8 < 4000 * 4 * 0.6  # well below log2(16) = 4 bits
    assert abs(len(stream) * 8 - coder.bits(symbols)) < 64 + 32  # flush + a word
    # a code the prior never saw is still codable
    assert coder.decode(coder.encode([15, 15, 15]), 3) == [15, 15, 15]


@pytest.mark.parametrize("bits", range(1, 16))
def test_uniform_streams_have_their_exact_length(bits: int) -> None:
    coder = UniformCategoricalCoder(1 << bits)
    rng = random.Random(bits)
    for n in (1, 2, 3, 5, 31, 32, 33, 100):
        symbols = [rng.randrange(1 << bits) for _ in range(n)]
        stream = coder.encode(symbols)
        assert len(stream) == coder.stream_length(n)
        assert len(stream) <= n * bits / 8 + 8 + 4
        assert coder.decode(stream, n) == symbols


def test_decode_rejects_every_wrong_length_and_alteration() -> None:
    coder = UniformCategoricalCoder(256)
    stream = coder.encode(list(range(16)))  # 24 bytes
    assert len(stream) == 24
    for bad, count in [
        (stream, 64),  # the inflated shape: 64 codes from 24 bytes
        (stream + bytes(4), 16),  # trailing bytes
        (stream[:-4], 16),  # truncated
        (stream[:-1], 16),  # not whole words
        (b"", 16),
        (bytes(24), 16),  # zeros: not the encoding of what they decode to
    ]:
        with pytest.raises(CorruptStreamError):
            coder.decode(bad, count)
    with pytest.raises(CorruptStreamError, match="bytes"):
        coder.decode("not bytes", 16)  # type: ignore[arg-type]


def test_learned_decode_rejects_impossible_lengths_before_decoding() -> None:
    coder = CategoricalCoder(quantize_frequencies([1000, 1, 1, 1]))
    stream = coder.encode([0] * 10)
    assert coder.decode(stream, 10) == [0] * 10
    with pytest.raises(CorruptStreamError, match="more than"):
        coder.decode(stream + bytes(4 * 20), 10)
    with pytest.raises(CorruptStreamError, match="cannot hold"):
        coder.decode(bytes(8), 10**9)  # would need at least ~0.02 bits per code
    for cut in range(8, len(stream), 4):
        with pytest.raises(CorruptStreamError):
            coder.decode(stream[:cut], 10)


def test_random_streams_never_crash_and_never_decode_to_garbage() -> None:
    rng = random.Random(0)
    coders = [
        UniformCategoricalCoder(256),
        CategoricalCoder(quantize_frequencies([rng.randrange(100) for _ in range(64)])),
    ]
    accepted = 0
    for i in range(2000):
        coder = coders[i % 2]
        n = rng.randrange(1, 40)
        stream = rng.randbytes(4 * rng.randrange(0, n + 4))
        try:
            symbols = coder.decode(stream, n)
        except CorruptStreamError:
            continue
        accepted += 1
        assert coder.encode(symbols) == stream
    assert accepted < 20


def test_bad_tables_and_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="65536"):
        CategoricalCoder([1, 2, 3])
    with pytest.raises(ValueError, match="65536"):
        CategoricalCoder([0, 65536])
    coder = CategoricalCoder(quantize_frequencies([1, 1]))
    with pytest.raises(ValueError, match="symbols"):
        coder.encode([2])
    with pytest.raises(TypeError, match="integers"):
        coder.compress(torch.zeros(1, 2))
    assert coder.likelihoods(torch.tensor([0, 1])).sum().item() == pytest.approx(1.0)
    assert coder.symbol_bits.tolist() == [1.0, 1.0]
    assert math.isclose(coder.bits(torch.tensor([0, 1, 1])), 3.0)
