#!/usr/bin/env python3
"""Train an HQA stack greedily, layer by layer (run with ``--help`` for the options).

Example::

    python examples/train_hqa.py --config mnist --data-root ../shared/data \\
        --output runs/mnist
"""

import sys

from compressai_hqa.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
