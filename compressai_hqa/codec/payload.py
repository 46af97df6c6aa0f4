"""The payload of a ``.hqa`` file: every image's codes, bit-packed or rANS-coded.

The header around it is :mod:`compressai_hqa.codec.format`; ``docs/format.md``
is the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from compressai_hqa.codec.bitpacking import pack_bits, unpack_bits
from compressai_hqa.entropy_models import CategoricalCoder, ContextCoder

if TYPE_CHECKING:
    from compressai_hqa.codec.format import Header

__all__ = ["decode_payload", "encode_payload", "max_payload_length"]


def max_payload_length(prior: str, codes: int) -> int:
    """The longest rANS payload of ``codes`` codes under ``prior`` (learned or
    context; the uniform prior's exact length is at most the learned one's).

    Args:
        prior: the prior's name.
        codes: the number of codes of the file.

    Returns:
        Bytes.
    """
    if prior == "context":
        return ContextCoder.max_stream_length(codes)
    return 8 + 4 * codes


def encode_payload(
    codes: np.ndarray,
    prior: str,
    codebook_size: int,
    coder: CategoricalCoder | ContextCoder | None,
    shapes: Sequence[tuple[int, int]] = (),
) -> bytes:
    """The payload of all ``codes`` (a flat integer array, image after image).

    Args:
        codes: code indices in [0, codebook_size).
        prior: ``"uniform"`` (bit-packing), ``"learned"`` or ``"context"`` (rANS
            with ``coder``).
        codebook_size: number of codes K.
        coder: the prior's coder (not for ``prior="uniform"``).
        shapes: every image's code map (h, w) (``prior="context"`` only).
    """
    codes = np.asarray(codes).reshape(-1)
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"codes must be in [0, {codebook_size})")
    if prior == "uniform":
        return pack_bits(codes, codebook_size.bit_length() - 1)
    if coder is None or coder.codebook_size != codebook_size:
        raise ValueError(f"the {prior} prior needs a coder over {codebook_size} codes")
    if prior == "context":
        return coder.encode(codes, shapes)  # type: ignore[call-arg]
    return coder.encode(codes.astype(np.int64).tolist())


def decode_payload(
    header: Header,
    payload: bytes,
    coder: CategoricalCoder | ContextCoder | None = None,
) -> np.ndarray:
    """All codes of the file as a flat int64 array (inverse of :func:`encode_payload`).

    Raises:
        CorruptStreamError: the payload is not a valid encoding of
            ``header.total_codes`` codes.
    """
    n = header.total_codes
    if header.prior == "uniform":
        return unpack_bits(payload, n, header.codebook_size.bit_length() - 1)
    if coder is None or coder.codebook_size != header.codebook_size:
        raise ValueError(
            f"the {header.prior} prior needs a coder over {header.codebook_size} codes"
        )
    if header.prior == "context":
        shapes = [header.latent_shape(s) for s in header.sizes]
        return coder.decode(payload, shapes)  # type: ignore[arg-type]
    return np.asarray(coder.decode(payload, n), dtype=np.int64)
