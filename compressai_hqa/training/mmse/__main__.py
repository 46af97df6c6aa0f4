"""``python -m compressai_hqa.training.mmse``: see :mod:`.cli`."""

import sys

from compressai_hqa.training.mmse.cli import main

if __name__ == "__main__":
    sys.exit(main())
