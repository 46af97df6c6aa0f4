"""The ``.hqa`` codec: many images in one file at the ideal rate, and its CLI.

``compressai-hqa compress|decompress|info`` (also ``python -m
compressai_hqa.codec``) is :mod:`compressai_hqa.codec.cli`; the file format is
:mod:`compressai_hqa.codec.format` (``docs/format.md``); the model-level
functions (re-exported here) are in :mod:`compressai_hqa.codec.api`.
"""

from . import api
from .api import *  # noqa: F403 - the names of api.__all__
from .format import Header, ImageSize, pack, unpack

__all__ = [*api.__all__, "Header", "ImageSize", "pack", "unpack"]
