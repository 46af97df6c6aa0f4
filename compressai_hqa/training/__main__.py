"""``python -m compressai_hqa.training``: same as ``examples/train_hqa.py``."""

import sys

from compressai_hqa.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
