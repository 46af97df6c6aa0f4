"""``python -m compressai_hqa.codec``: the ``compressai-hqa`` command line."""

from compressai_hqa.codec.cli import main

if __name__ == "__main__":
    main()
