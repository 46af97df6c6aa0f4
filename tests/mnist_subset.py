"""The MNIST subset shipped with the tests (``tests/data/mnist_subset.npz``).

The first :data:`TRAIN_COUNT` training digits and the first :data:`TEST_COUNT` test
digits of the real MNIST IDX files, raw uint8 28x28 with their labels, so that the
test suite runs on a fresh clone without the full reference data. ``conftest.py``
writes them back as IDX ``.gz`` files in torchvision's layout for the real loader.

Regenerate the file from the real IDX files (see ``tests/data/README.md``)::

    python tests/mnist_subset.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import zipfile

from pathlib import Path

import numpy as np

TRAIN_COUNT = 5_000
TEST_COUNT = 1_000
SUBSET_FILE = Path(__file__).resolve().parent / "data" / "mnist_subset.npz"
# the IDX file names of each array, as in <root>/MNIST/raw/ (torchvision's layout)
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
COUNTS = {"train": TRAIN_COUNT, "test": TEST_COUNT}
_UBYTE = 0x08  # IDX type code of unsigned bytes


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX array from a ``.gz`` file (read independently of
    torchvision).

    Raises:
        ValueError: not a well-formed unsigned-byte IDX file.
    """
    data = gzip.decompress(path.read_bytes())
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != _UBYTE:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {body.size} bytes of data for shape {shape}")
    return body.reshape(shape)


def idx_gz_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as the bytes of a gzip-compressed IDX file (no timestamp)."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX files here hold uint8 arrays, got {array.dtype}")
    header = (
        bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    )
    return gzip.compress(header + np.ascontiguousarray(array).tobytes(), mtime=0)


def load_subset(path: Path = SUBSET_FILE) -> dict[str, np.ndarray]:
    """The shipped arrays: ``{train,test}_{images,labels}``, uint8."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in IDX_FILES}


def write_idx_root(root: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Writes ``arrays`` as ``<root>/MNIST/raw/*-idx?-ubyte.gz``; returns ``root``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        (raw / name).write_bytes(idx_gz_bytes(arrays[key]))
    return root


def first_digits(data_root: Path) -> dict[str, np.ndarray]:
    """The subset's digits, read from the real IDX files under ``data_root``."""
    raw = data_root / "MNIST" / "raw"
    return {
        key: read_idx(raw / name)[: COUNTS[key.split("_")[0]]]
        for key, name in IDX_FILES.items()
    }


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed ``.npz`` whose bytes depend only on the arrays (no timestamps)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue(), compresslevel=9)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data-root", type=Path, required=True, help="folder holding MNIST/raw/*.gz"
    )
    p.add_argument("--output", type=Path, default=SUBSET_FILE, help="npz to write")
    args = p.parse_args()
    save_npz(args.output, first_digits(args.data_root))
    print(f"{sha256(args.output)}  {args.output.name}")


if __name__ == "__main__":
    main()
