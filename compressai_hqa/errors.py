"""The exceptions of compressai_hqa that callers are expected to catch."""

from __future__ import annotations

__all__ = ["CorruptStreamError"]


class CorruptStreamError(ValueError):
    """A bitstream or ``.hqa`` file is damaged, truncated, extended or inconsistent.

    Raised by every decoding entry point (``HQA.decompress``, the entropy coders'
    ``decompress``/``decode`` and :mod:`compressai_hqa.codec`) before any native
    (C++) decoder can read out of bounds; nothing else is raised for bad data.
    It is a :class:`ValueError`, so code written for CompressAI's models, which
    raise ``ValueError`` on bad input, keeps working.
    """
