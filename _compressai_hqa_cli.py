"""The ``compressai-hqa`` console script: arguments parsed before any heavy import.

Importing any module of ``compressai_hqa`` imports the package, which imports
torch and CompressAI: seconds and about 800 MB before the first line of the
command runs. This launcher loads the command line's own module
(``compressai_hqa/codec/cli.py``, which imports nothing heavy at module level)
from its file, without importing the package, so that ``--help``, ``--version``
and usage errors answer at once; a valid command then imports the package and
runs (``compressai_hqa.codec.cli.run``). ``python -m compressai_hqa.codec`` is
the same command line, imported the ordinary way.

The process ends with ``os._exit`` once stdout and stderr are flushed: the
interpreter's teardown of torch and CompressAI would add about 130 MB to the
peak memory of every run (nothing of the command is left to clean up then:
outputs are complete or removed, temporary files too).
"""

from __future__ import annotations

import importlib.util
import os
import sys

from pathlib import Path

__all__ = ["main"]


def main() -> int:
    """Runs ``compressai-hqa`` with ``sys.argv`` and ends the process."""
    try:
        status = _main()
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    try:
        sys.stdout.flush()
    except OSError as err:  # e.g. info > /dev/full
        print(f"compressai-hqa: error: cannot write to stdout: {err.strerror}",
              file=sys.stderr)  # fmt: skip
        status = status or 1
    sys.stderr.flush()
    os._exit(status)


def _main() -> int:
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
