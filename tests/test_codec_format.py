"""Tests of compressai_hqa.codec.format: the .hqa container and its limits."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from compressai_hqa import CorruptStreamError
from compressai_hqa.codec import format as fmt
from compressai_hqa.codec.format import Header, ImageSize, pack, unpack
from compressai_hqa.entropy_models import CategoricalCoder, quantize_frequencies


def header(sizes, prior="uniform", codebook_size=256, factor=32, **kw) -> Header:
    return Header(
        model=kw.pop("model", "hqa-mnist"),
        fingerprint=kw.pop("fingerprint", bytes(range(16))),
        layer=kw.pop("layer", 5),
        prior=prior,
        codebook_size=codebook_size,
        factor=factor,
        sizes=tuple(sizes),
        **kw,
    )


def recrc(data: bytes) -> bytes:
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_round_trip_shared_size_and_exact_uniform_rate() -> None:
    h = header([ImageSize(32, 32, 1)] * 1000)
    codes = np.arange(1000) % 256
    data = pack(h, fmt.encode_payload(codes, "uniform", 256, None))
    assert len(data) == 1000 + 54  # one byte per digit plus a 54-byte header
    back, payload = unpack(data)
    assert back == h and back.shared_size and back.total_codes == 1000
    assert np.array_equal(fmt.decode_payload(back, payload), codes)


def test_round_trip_mixed_sizes_and_learned_prior() -> None:
    sizes = [ImageSize(37, 29, 3), ImageSize(5, 3, 3), ImageSize(37, 29, 3)]
    h = header(sizes, prior="learned", codebook_size=16, factor=4, layer=2)
    assert h.codes_per_image == [80, 2, 80] and not h.shared_size
    coder = CategoricalCoder(quantize_frequencies(range(1, 17)))
    codes = np.random.default_rng(0).integers(0, 16, h.total_codes)
    data = pack(h, fmt.encode_payload(codes, "learned", 16, coder))
    back, payload = unpack(data)
    assert back.sizes == tuple(sizes)
    assert np.array_equal(fmt.decode_payload(back, payload, coder), codes)


@pytest.mark.parametrize("bits", [1, 3, 4, 7, 8, 9, 15])
def test_bit_packing_is_exact_and_canonical(bits: int) -> None:
    codes = np.random.default_rng(bits).integers(0, 1 << bits, 37)
    packed = fmt.pack_bits(codes, bits)
    assert len(packed) == -(-37 * bits // 8)
    assert np.array_equal(fmt.unpack_bits(packed, 37, bits), codes)
    if (37 * bits) % 8:
        with pytest.raises(CorruptStreamError, match="padding"):
            fmt.unpack_bits(packed[:-1] + bytes([packed[-1] | 1]), 37, bits)


def test_structural_errors_are_found_before_the_payload() -> None:
    data = pack(header([ImageSize(32, 32, 1)] * 3), bytes(3))
    with pytest.raises(CorruptStreamError, match="magic"):
        unpack(b"PNG" + data[3:])
    with pytest.raises(CorruptStreamError, match="CRC"):
        unpack(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptStreamError, match="CRC"):
        unpack(data + b"\0")
    with pytest.raises(CorruptStreamError, match="payload"):
        unpack(recrc(data[:-5] + data[-4:]))  # one payload byte less, CRC fixed
    future = recrc(data[:4] + bytes([fmt.VERSION + 1]) + data[5:])
    with pytest.raises(CorruptStreamError, match=r"newer.*upgrade"):
        unpack(future)
    with pytest.raises(CorruptStreamError):
        unpack(b"")
    with pytest.raises(CorruptStreamError, match="bytes"):
        unpack("text")  # type: ignore[arg-type]


def test_headers_are_canonical() -> None:
    """One size stored per image is refused whenever all are equal, for one image
    too (flag bit 0 cleared): every set of images has one encoding."""
    data = pack(header([ImageSize(32, 32, 1)]), bytes(1))
    assert data[7] == 1 and unpack(data)[0].count == 1
    cleared = recrc(data[:7] + b"\x00" + data[8:])  # the same table, flag cleared
    with pytest.raises(CorruptStreamError, match="one size stored per image"):
        unpack(cleared)
    two = pack(header([ImageSize(32, 32, 1)] * 2), bytes(2))
    offset = fmt._FIXED.size + len("hqa-mnist") + 4
    table = two[offset : offset + 5] * 2
    spelled = recrc(two[:7] + b"\x00" + two[8:offset] + table + two[offset + 5 :])
    with pytest.raises(CorruptStreamError, match="one size stored per image"):
        unpack(spelled)


def _with_count(data: bytes, count: int) -> bytes:
    offset = fmt._FIXED.size + len("hqa-mnist")
    return recrc(data[:offset] + struct.pack("<I", count) + data[offset + 4 :])


def test_limits_are_checked_before_allocating() -> None:
    data = pack(header([ImageSize(32, 32, 1)]), bytes(1))
    with pytest.raises(CorruptStreamError, match="images"):
        unpack(_with_count(data, 10**7))
    # 10^6 shared 32x32 images would need 10^6 payload bytes: refused by length
    with pytest.raises(CorruptStreamError, match="payload"):
        unpack(_with_count(data, 10**6))
    # per-image sizes that the file does not hold
    per_image = pack(header([ImageSize(32, 32, 1), ImageSize(8, 8, 1)]), bytes(2))
    assert per_image[7] == 0  # flags: one size per image
    with pytest.raises(CorruptStreamError, match="truncated"):
        unpack(_with_count(per_image, 10**5))
    with pytest.raises(CorruptStreamError, match="pixels"):
        header([ImageSize(40000, 40000, 1)])  # 1.6e9 pixels
    with pytest.raises(CorruptStreamError, match="codes"):
        header([ImageSize(4096, 4096, 1)] * 2, factor=1)  # 2^25 codes
    with pytest.raises(CorruptStreamError, match="channels"):
        header([ImageSize(32, 32, 2)])
    with pytest.raises(CorruptStreamError, match="power-of-two"):
        header([ImageSize(32, 32, 1)], codebook_size=100)
    with pytest.raises(CorruptStreamError, match="name"):
        header([ImageSize(32, 32, 1)], model="hqa mnist\n")
    with pytest.raises(ValueError, match="65535"):
        fmt.check_sizes([ImageSize(70000, 1, 1)])
