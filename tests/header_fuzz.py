"""Header-field fuzzing of .hqa files: one field changed, the CRC recomputed.

The CRC stops almost every random damage before the header's fields are read;
this fuzzer reaches them. :func:`mutate_field` sets one header field (version,
prior, layer, flags, fingerprint, codebook size, downsampling, name, count, one
stored size, payload length) to an edge or random value, sometimes keeping the
file consistent around it (a longer name with its bytes, a size table rewritten
for the new flags or count, a payload cut or padded to the new length), and
recomputes the CRC. :func:`check` states what every such file must do: decode
to images and re-encode to exactly its bytes, or raise ``CorruptStreamError``
(a ``WeightsMismatchError`` too) or ``MemoryLimitError``; read from a stream,
give exactly its bytes or raise ``CorruptStreamError``.

``tests/test_codec_fuzz.py`` runs a few thousand; for more::

    python tests/header_fuzz.py --cases 10000
"""

from __future__ import annotations

import argparse
import io
import random
import struct
import time
import zlib

from collections import Counter

import torch

from conftest import tiny_config

from compressai_hqa import HQA, CorruptStreamError
from compressai_hqa.codec import (
    MemoryLimitError,
    compress_images,
    decompress_images,
    read_codes,
    read_file,
)
from compressai_hqa.codec.format import encode_payload, pack
from compressai_hqa.entropy_models import quantize_frequencies

#: Decoding budget of the fuzzed files: enough for the small images, and a
#: bound on the work of any file that claims large ones.
MAX_MEMORY = 64 << 20
_WIDTHS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}


def fix_crc(body: bytes) -> bytes:
    """``body`` (a file without its CRC) followed by its CRC-32."""
    return body + struct.pack("<I", zlib.crc32(body))


def fields(data: bytes) -> dict[str, tuple[int, int]]:
    """Header field -> (offset, size) of a valid file."""
    n = data[27]
    out = {"version": (4, 1), "prior": (5, 1), "layer": (6, 1), "flags": (7, 1),
           "fingerprint": (8, 16), "codebook": (24, 2), "log2_factor": (26, 1),
           "name_length": (27, 1), "name": (28, n), "count": (28 + n, 4)}  # fmt: skip
    count = struct.unpack_from("<I", data, 28 + n)[0]
    stored = 1 if data[7] & 1 else count
    offset = 32 + n
    for i in range(stored):
        out[f"height{i}"] = (offset + 5 * i, 2)
        out[f"width{i}"] = (offset + 5 * i + 2, 2)
        out[f"channels{i}"] = (offset + 5 * i + 4, 1)
    out["payload_length"] = (offset + 5 * stored, 4)
    return out


def _value(rng: random.Random, old: int, size: int) -> int:
    top = _WIDTHS[size]
    choices = [0, 1, 2, 3, top, top - 1, old + 1, old - 1, old * 2, old // 2,
               rng.randrange(top + 1), 1 << rng.randrange(8 * size)]  # fmt: skip
    return min(max(rng.choice(choices), 0), top)


def mutate_field(data: bytes, rng: random.Random) -> bytes:
    """One header field of the valid file ``data`` changed, the CRC recomputed."""
    layout = fields(data)
    body = bytearray(data[:-4])
    name = rng.choice(sorted(layout))
    offset, size = layout[name]
    kind = rng.random()
    if name == "fingerprint" or name == "name":
        if name == "name" and kind < 0.3:  # another length, bytes to match
            new = bytes(rng.choice(b"abz-._\x00\xff") for _ in range(rng.choice(
                [0, 1, size + 1, 63, 64, 65, 255])))  # fmt: skip
            body[27] = min(len(new), 255)
            body[offset : offset + size] = new
        else:
            i = offset + rng.randrange(size)
            body[i] = rng.randrange(256)
        return fix_crc(bytes(body))
    old = int.from_bytes(body[offset : offset + size], "little")
    new = _value(rng, old, size)
    body[offset : offset + size] = new.to_bytes(size, "little")
    if kind < 0.35:  # keep the file consistent around the new value
        _adjust(body, layout, name, old, new, rng)
    return fix_crc(bytes(body))


def _adjust(body: bytearray, layout, name: str, old: int, new: int, rng) -> None:
    """Resizes what depends on field ``name``: the size table (flags, count) or
    the payload (payload length)."""
    sizes = layout["payload_length"][0]
    first = layout.get("height0")
    if name == "payload_length":
        start = sizes + 4
        payload = body[start:][:new] + rng.randbytes(max(0, min(new - old, 1 << 16)))
        del body[start:]
        body += payload
    elif name == "count" and first is not None and not body[7] & 1:
        table_end = sizes
        entry = bytes(body[first[0] : first[0] + 5])
        count = min(new, 1 << 16)
        table = entry * count
        body[first[0] : table_end] = table
    elif name == "flags" and first is not None:
        count = struct.unpack_from("<I", body, layout["count"][0])[0]
        entry = bytes(body[first[0] : first[0] + 5])
        if new & 1 and not old & 1:  # to one shared size
            body[first[0] : sizes] = entry
        elif old & 1 and not new & 1 and count <= 1 << 16:  # to one size per image
            body[first[0] : sizes] = entry * count


def model_and_files() -> tuple[HQA, list[bytes]]:
    """A tiny 2-layer model with a learned prior, and valid files of it: uniform
    and learned, shared and mixed sizes, one image and several."""
    torch.manual_seed(0)
    stack = HQA(tiny_config(num_layers=3)).eval()
    stack.set_code_prior(2, quantize_frequencies([2**i for i in range(16)]))
    model = stack.truncate(2).eval()
    g = torch.Generator().manual_seed(1)
    sets = [[torch.rand(1, 32, 32, generator=g) for _ in range(3)],
            [torch.rand(1, h, w, generator=g) for h, w in ((9, 7), (4, 4), (9, 7))],
            [torch.rand(1, 13, 11, generator=g)]]  # fmt: skip
    files = [compress_images(model, images, prior)
             for images in sets for prior in ("uniform", "learned")]  # fmt: skip
    return model, files


def check(data: bytes, model: HQA) -> str:
    """What ``data`` did: ``"decoded"`` or ``"refused"``; raises AssertionError
    for anything else (another exception, a non-canonical file decoded, a
    stream reader that disagrees)."""
    try:
        streamed = read_file(io.BytesIO(data))
    except CorruptStreamError:
        streamed = None
    else:
        assert streamed == data, "the stream reader returned other bytes"
        try:
            read_file(io.BytesIO(data + b"\0"))
        except CorruptStreamError:
            pass
        else:
            raise AssertionError("a byte after the CRC was accepted")
    try:
        images = decompress_images(data, model, max_memory=MAX_MEMORY)
    except (CorruptStreamError, MemoryLimitError):
        return "refused"
    header, codes = read_codes(data, model)
    assert len(images) == header.count
    flat = torch.cat([c.flatten() for c in codes]).numpy()
    payload = encode_payload(flat, header.prior, 16, model.coder(header.prior))
    assert pack(header, payload) == data, "a non-canonical file decoded"
    assert streamed == data, "decoded, but the stream reader refused it"
    return "decoded"


def run(cases: int, seed: int = 0) -> Counter:
    """Outcomes of ``cases`` field mutations (a Counter of check's results)."""
    model, files = model_and_files()
    rng = random.Random(seed)
    outcomes: Counter = Counter()
    for i in range(cases):
        data = mutate_field(files[i % len(files)], rng)
        try:
            outcomes[check(data, model)] += 1
        except Exception as err:
            raise AssertionError(f"case {i}: {err!r}; file {data.hex()}") from err
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    outcomes = run(args.cases, args.seed)
    elapsed = time.perf_counter() - start
    print(f"{args.cases} header-field mutations (seed {args.seed}): "
          f"{dict(outcomes)}, 0 failures, {elapsed:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
