"""Runs CompressAI's ``eval_model`` with the HQA models registered.

Usage is exactly CompressAI's::

    python -m compressai_hqa.eval_model checkpoint IMAGES -a hqa -p model.pth.tar
"""

from __future__ import annotations

import sys

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    from compressai_hqa import register

    register()
    from compressai.utils.eval_model.__main__ import main as compressai_main

    compressai_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
