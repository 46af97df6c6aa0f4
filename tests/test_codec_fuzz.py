"""Fuzzing: mutated, truncated and extended .hqa files and bitstreams.

A seeded mutation loop (no extra dependency) feeds more than 10,000 damaged
inputs to ``decompress_images`` (files of the uniform, learned and context
priors) and ``HQA.decompress`` (per-image streams). Each must decode to something that re-encodes to exactly the input,
or raise ``CorruptStreamError``; nothing else, in bounded time and memory.
"""

from __future__ import annotations

import random
import resource
import struct
import time
import zlib

import pytest
import torch

from conftest import tiny_config, tiny_context_prior

from compressai_hqa import HQA, CorruptStreamError, zoo
from compressai_hqa.codec import (
    compress_images,
    decompress_images,
    payload_coder,
    read_codes,
)
from compressai_hqa.codec.context import ContextPrior
from compressai_hqa.codec.format import Header, encode_payload, pack
from compressai_hqa.entropy_models import quantize_frequencies

FILE_CASES = 7000
STREAM_CASES = 4000


def _fix_crc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def mutate(data: bytes, rng: random.Random, header_bytes: int) -> bytes:
    """One random damage: flips, truncation, extension, insertion, deletion or an
    extreme header field."""
    kind = rng.randrange(7)
    buf = bytearray(data)
    if kind == 0 and buf:  # flip 1 to 4 bits
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del buf[rng.randrange(len(buf) + 1) :]
    elif kind == 2:  # extend
        buf += rng.randbytes(rng.choice([1, 3, 4, 8, 100]))
    elif kind == 3 and buf:  # insert or delete in the middle
        i = rng.randrange(len(buf))
        if rng.random() < 0.5:
            buf[i:i] = rng.randbytes(rng.randint(1, 8))
        else:
            del buf[i : i + rng.randint(1, 8)]
    elif kind == 4 and 0 < header_bytes < len(buf):  # overwrite header bytes
        i = rng.randrange(header_bytes)
        buf[i : i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
                                     struct.pack("<I", 10**7), rng.randbytes(4)])  # fmt: skip
    elif kind == 5:  # random bytes of the same length
        buf = bytearray(rng.randbytes(len(buf)))
    else:  # flip a payload byte
        if len(buf) > header_bytes + 4:
            buf[rng.randrange(header_bytes, len(buf) - 4)] ^= rng.randrange(1, 256)
    out = bytes(buf)
    # half the files get a valid CRC, so that the deeper checks are reached
    return _fix_crc(out) if len(out) >= 8 and rng.random() < 0.5 else out


@pytest.fixture(scope="module")
def model() -> HQA:
    torch.manual_seed(0)
    stack = HQA(tiny_config(num_layers=3)).eval()
    stack.set_code_prior(2, quantize_frequencies([2**i for i in range(16)]))
    return stack.truncate(2).eval()


@pytest.fixture(scope="module")
def context(model: HQA) -> ContextPrior:
    return tiny_context_prior(model)


def _canonical(data: bytes, model: HQA, context: ContextPrior) -> tuple[Header, bytes]:
    """The header of a decodable file and the payload its codes encode to."""
    header, codes = read_codes(data, model, context_prior=context)
    coder, _ = payload_coder(model, header.prior, context)
    shapes = [header.latent_shape(s) for s in header.sizes]
    flat = torch.cat([c.flatten() for c in codes]).numpy()
    return header, encode_payload(flat, header.prior, 16, coder, shapes)


def _files(model: HQA, context: ContextPrior) -> list[tuple[bytes, int]]:
    """(file, header length) for a uniform, a learned and a context file, shared
    and mixed sizes (small images for the context prior, decoded code by code)."""
    g = torch.Generator().manual_seed(1)
    same = [torch.rand(1, 32, 32, generator=g) for _ in range(3)]
    small = [torch.rand(1, 8, 12, generator=g) for _ in range(3)]
    mixed = [torch.rand(1, h, w, generator=g) for h, w in ((9, 7), (4, 4), (9, 7))]
    files = []
    for images in (same, mixed):
        for prior in ("uniform", "learned", "context"):
            some = small if prior == "context" and images is same else images
            data = compress_images(model, some, prior, context_prior=context)
            payload = _canonical(data, model, context)[1]
            files.append((data, len(data) - len(payload) - 4))
    return files


def test_mutated_files_and_streams_round_trip_or_raise_the_documented_error(
    model: HQA, context: ContextPrior
) -> None:
    rng = random.Random(0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    files = _files(model, context)
    outcomes = {"decoded": 0, "refused": 0}
    for i in range(FILE_CASES):
        base, header_bytes = files[i % len(files)]
        data = mutate(base, rng, header_bytes)
        try:
            images = decompress_images(data, model, context_prior=context)
        except CorruptStreamError:
            outcomes["refused"] += 1
            continue
        outcomes["decoded"] += 1
        header, payload = _canonical(data, model, context)
        assert len(images) == header.count
        assert pack(header, payload) == data  # decoded means canonical
    assert outcomes["refused"] > 0.5 * FILE_CASES and outcomes["decoded"] > 0

    # per-image streams through HQA.decompress, with random shapes too
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        out = model.compress(torch.rand(4, 1, 13, 11, generator=g))
    streams = out["strings"][0]
    shapes = [(13, 11), (64, 64), (1, 1), (-1, 5), (0, 3), (10**6, 10**6), (13,),
              ("13", 11), (2.5, 3)]  # fmt: skip
    decoded = 0
    for i in range(STREAM_CASES):
        stream = mutate(streams[i % len(streams)], rng, 0)[: rng.choice([None, 64])]
        shape = (13, 11) if rng.random() < 0.7 else rng.choice(shapes)
        try:
            model.decompress([[stream]], shape)
        except CorruptStreamError:
            continue
        decoded += 1
        indices = model.entropy_coder.decompress([stream], model.latent_shape(*shape))
        assert model.entropy_coder.compress(indices) == [stream]
    elapsed = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{FILE_CASES} files {outcomes}, {STREAM_CASES} streams "
          f"({decoded} decoded) in {elapsed:.1f} s")  # fmt: skip
    assert elapsed < 120, elapsed
    assert rss_after - rss_before < 500_000, (rss_before, rss_after)  # KiB


def test_the_issue_stream_with_an_inflated_shape_is_refused() -> None:
    """The 24-byte layer-3 stream of one 32x32 digit, with shape 64x64 (64 codes)."""
    model = zoo.hqa(layer=3, pretrained=True)
    from compressai_hqa.datasets import sample_digits

    with torch.no_grad():
        out = model.compress(sample_digits().images[:1])
    stream = out["strings"][0][0]
    assert len(stream) == 24
    for shape in ((64, 64), (32, 64), (-32, 32), (0, 0)):
        with pytest.raises(CorruptStreamError):
            model.decompress([[stream]], shape)
    for bad in (stream + b"\0\0\0\0", stream[:20], bytes(24), b"\xff" * 24):
        with pytest.raises(CorruptStreamError):
            model.decompress([[bad]], (32, 32))
    x_hat = model.decompress([[stream]], (32, 32))["x_hat"]
    assert x_hat.shape == (1, 1, 32, 32)
