"""The ``compressai-hqa`` console script: arguments parsed before any heavy import.

Importing any module of ``compressai_hqa`` imports the package, which imports
torch and CompressAI: seconds and about 800 MB before the first line of the
command runs. This launcher loads the command line's own module
(``compressai_hqa/codec/cli.py``, which imports nothing heavy at module level)
from its file, without importing the package, so that ``--help``, ``--version``
and usage errors answer at once; a valid command then imports the package and
runs (``compressai_hqa.codec.cli.run``). ``python -m compressai_hqa.codec`` is
the same command line, imported the ordinary way.
"""

from __future__ import annotations

import importlib.util
import sys

from pathlib import Path

__all__ = ["main"]


def main() -> int:
    """Runs ``compressai-hqa`` with ``sys.argv``."""
    try:
        spec = importlib.util.find_spec("compressai_hqa")  # does not import it
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("compressai_hqa is not installed")
        folder = Path(next(iter(spec.submodule_search_locations)))
        location = folder / "codec" / "cli.py"
        cli_spec = importlib.util.spec_from_file_location(
            "_compressai_hqa_cli_parser", location
        )
        if cli_spec is None or cli_spec.loader is None:
            raise ImportError(f"cannot load {location}")
        cli = importlib.util.module_from_spec(cli_spec)
        cli_spec.loader.exec_module(cli)
        return cli.main()
    except KeyboardInterrupt:
        print("compressai-hqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
