"""The ``.hqa`` codec: many images in one file at the ideal rate, and its CLI.

``compressai-hqa compress|decompress|info`` (also ``python -m
compressai_hqa.codec``) is :mod:`compressai_hqa.codec.cli` (arguments) and
:mod:`compressai_hqa.codec.commands` (what they do); the file format is
:mod:`compressai_hqa.codec.format` (``docs/format.md``) and
:mod:`compressai_hqa.codec.reading` (reading it from a stream); the model-level
functions (re-exported here) are in :mod:`compressai_hqa.codec.api`, which runs
the network as :mod:`compressai_hqa.codec.batching` says.
"""

from . import api
from .api import *  # noqa: F403 - the names of api.__all__
from .format import Header, ImageSize, pack, unpack
from .reading import read_file

__all__ = [*api.__all__, "Header", "ImageSize", "pack", "read_file", "unpack"]
