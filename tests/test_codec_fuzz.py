"""Fuzzing: mutated, truncated and extended .hqa files and bitstreams.

A seeded mutation loop (no extra dependency) feeds more than 10,000 damaged
inputs to ``decompress_images`` (files of the uniform, learned and context
priors) and ``HQA.decompress`` (per-image streams). Each must decode to
something that re-encodes to exactly the input, or raise ``CorruptStreamError``; nothing else, in bounded time and memory.
Header fields changed with the CRC recomputed (``header_fuzz.py``) reach the
checks behind the CRC; streams must not be read further than their header
promises; files claiming huge images are refused before allocating.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import struct
import subprocess
import sys
import time
import zlib

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, tiny_context_prior
from header_fuzz import fields as header_fields
from header_fuzz import run as run_header_fuzz
from PIL import Image

from compressai_hqa import HQA, CorruptStreamError, zoo
from compressai_hqa.codec import (
    compress_images,
    decompress_images,
    payload_coder,
    read_codes,
    read_file,
    weights_fingerprint,
)
from compressai_hqa.codec.context import ContextPrior
from compressai_hqa.codec.format import Header, ImageSize, encode_payload, pack
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


def _model() -> HQA:
    torch.manual_seed(0)
    stack = HQA(tiny_config(num_layers=3)).eval()
    stack.set_code_prior(2, quantize_frequencies([2**i for i in range(16)]))
    return stack.truncate(2).eval()


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


def fuzz() -> dict:
    """The fuzzing loop in this process: what it found, its time (s) and this
    process's peak memory (KiB) before and after it."""
    model = _model()
    context = tiny_context_prior(model)
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
    return {"outcomes": outcomes, "decoded": decoded, "elapsed": elapsed,
            "rss_before": rss_before, "rss_after": rss_after}  # fmt: skip


def test_mutated_files_and_streams_round_trip_or_raise_the_documented_error() -> None:
    """In a fresh process, whose peak memory no earlier test has set."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "import test_codec_fuzz; print(json.dumps(test_codec_fuzz.fuzz()))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    print(f"{FILE_CASES} files {result['outcomes']}, {STREAM_CASES} streams "
          f"({result['decoded']} decoded) in {result['elapsed']:.1f} s")  # fmt: skip
    assert result["elapsed"] < 120, result
    assert result["rss_after"] - result["rss_before"] < 500_000, result  # KiB


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


def test_header_fields_with_recomputed_crcs_decode_or_are_refused() -> None:
    """3,000 files with one header field changed and a valid CRC (``python
    tests/header_fuzz.py --cases 10000`` runs more): each decodes to a file that
    re-encodes to its bytes, or is refused with the documented errors."""
    outcomes = run_header_fuzz(3000, seed=0)
    assert outcomes["refused"] > 0.5 * 3000 and outcomes["decoded"] > 0, outcomes


class _Endless(io.RawIOBase):
    """A stream of ``head`` then ``fill`` forever, counting the bytes read."""

    def __init__(self, head: bytes, fill: bytes = b"\0") -> None:
        self.head, self.fill, self.consumed = head, fill, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = len(buffer)
        data = self.head[self.consumed : self.consumed + n]
        data += self.fill * (n - len(data))
        buffer[:n] = data[:n]
        self.consumed += n
        return n


def test_streams_are_read_no_further_than_the_header_promises() -> None:
    model = _model()
    data = compress_images(model, [torch.rand(1, 32, 32)])
    for head, words in [
        (b"", "magic"),  # /dev/zero
        (b"\x89HQA\x07", "newer"),  # a future version: its layout is unknown
        (data[:-4], "after the CRC"),  # a valid header, then zeros for ever
        (data, "after the CRC"),  # a whole file, then more
    ]:
        stream = _Endless(head)
        with pytest.raises(CorruptStreamError, match=words):
            read_file(stream)
        assert stream.consumed <= max(len(data), 28) + 1, (words, stream.consumed)
    # a header claiming 2^32 - 1 payload bytes for its 64 codes: refused unread
    offset, _ = header_fields(data)["payload_length"]
    claim = data[:offset] + struct.pack("<I", 2**32 - 1)
    stream = _Endless(claim)
    with pytest.raises(CorruptStreamError, match="payload of 4294967295 bytes"):
        read_file(stream)
    assert stream.consumed == len(claim)
    assert read_file(io.BytesIO(data)) == data


# One child per crafted file: it imports the package (torch and CompressAI need
# about 3.6 GB of address space to start on this machine, so a 3 GB limit set
# before would stop the start-up itself), then limits its address space to what
# it holds plus 3 GiB, runs the command line and exits without the interpreter's
# teardown (as the console script does).
_CHILD = """
import os, re, resource, sys
from compressai_hqa.codec import cli
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
limit = size * 1024 + 3 * 2**30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    status = cli.main(sys.argv[1:])
except SystemExit as exit_:
    status = exit_.code
sys.stdout.flush(); sys.stderr.flush()
peak = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
with open(os.environ["HQA_PEAK_FILE"], "w") as f:
    f.write(peak)
os._exit(status)
"""


def _limited(*args: object) -> tuple[int, str, int]:
    """(exit status, stderr, peak RSS in bytes) of the command line in a child
    limited as _CHILD says. The peak is the child's own VmHWM, read by the child
    at exit: ``ru_maxrss`` of a child counts the parent's resident set at the
    fork/exec (a large pytest process would fail the bound on its own)."""
    peak_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"hqa-peak-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, *map(str, args)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "HQA_PEAK_FILE": str(peak_file)},
    )  # fmt: skip
    err = proc.stderr.read().decode()
    status = proc.wait()
    proc.stderr.close()
    peak = int(peak_file.read_text()) * 1024  # KiB
    peak_file.unlink()
    return status, err, peak


@pytest.mark.slow
def test_crafted_large_files_are_refused_or_decoded_in_bounded_memory(
    tmp_path: Path,
) -> None:
    """One image of 2048^2, 4096^2, 8192^2 and 65535x1024 pixels at layer 5 (4 to
    64 KB files, valid CRC): refused in one line with exit 2 and a peak RSS below
    1 GB (the start-up alone is ~0.8 GB); 512^2 decodes under the limit. An
    8000x8000 PNG is refused by compress before its pixels are decoded."""
    model = zoo.hqa(layer=5, pretrained=True)
    fingerprint = weights_fingerprint(model)
    rng = np.random.default_rng(0)
    for h, w in ((2048, 2048), (4096, 4096), (8192, 8192), (65535, 1024), (512, 512)):
        header = Header(model="hqa-mnist", fingerprint=fingerprint, layer=5,
                        prior="uniform", codebook_size=256, factor=32,
                        sizes=(ImageSize(h, w, 1),))  # fmt: skip
        codes = rng.integers(0, 256, header.total_codes)
        path = tmp_path / f"{h}x{w}.hqa"
        path.write_bytes(pack(header, encode_payload(codes, "uniform", 256, None)))
        out = tmp_path / f"{h}x{w}"
        code, err, peak = _limited("decompress", path, "-o", out)
        if (h, w) == (512, 512):
            assert code == 0, err
            assert Image.open(out / "00000.png").size == (512, 512)
            continue
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"{h}x{w} images at layer 5" in lines[0], err
        assert "--max-memory" in lines[0]
        assert peak < 1e9, (h, w, peak)
        assert not out.exists()
    Image.new("L", (8000, 8000)).save(tmp_path / "big.png")
    code, err, peak = _limited("compress", tmp_path / "big.png", "-o", tmp_path / "b")
    assert code == 2 and peak < 1e9, (err, peak)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "big.png: encoding 8000x8000 images" in lines[0], err
