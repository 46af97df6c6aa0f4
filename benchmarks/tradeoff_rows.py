"""The rows of the trade-off benchmark: one decoding of the test digits at one layer.

A row is a layer and a decode (:data:`DECODES`): ``mmse``, ``argmin``,
``average`` (the mean of 8 sampled decodes, temperature 1) or ``sample-tT``
(one draw of every lower layer's code at temperature T). Its result is a JSON
file: MSE, PSNR, class error and the per-pixel spread of repeated decodes of the
first :data:`SPREAD_IMAGES` digits, computed once; and rFID at each number of
images it was asked for (``rfid: {"n": value}``), added as they are measured.
Decodes are seeded (a CPU generator, one stream per row), so re-decoding a row
for a later rFID gives the same images.
"""

from __future__ import annotations

import json
import time

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torch import Tensor
from tqdm import tqdm

from compressai_hqa import HQA, Decoding
from compressai_hqa.eval_model.codes import decode_spread
from compressai_hqa.eval_model.evaluate import image_metrics
from compressai_hqa.files import atomic_write
from compressai_hqa.metrics.classifier import classification_error
from compressai_hqa.metrics.fid import frechet_distance, inception_features

__all__ = [
    "BATCH_SIZE",
    "DECODES",
    "SPREAD_DECODES",
    "SPREAD_IMAGES",
    "Row",
    "argmin_codes",
    "decode_row",
    "load_row",
    "measure_rfid",
    "measure_row",
    "save_row",
]

#: The temperatures of the sampled rows.
TEMPERATURES = (1.0, 2.0, 3.0, 5.0)
#: Every decode of a layer, in table order.
DECODES = ("mmse", "argmin", "average", *(f"sample-t{t:g}" for t in TEMPERATURES))
#: Images per decode batch (fixed: the draws of a seeded row depend on it).
BATCH_SIZE = 500
#: The spread is over this many decodes of the first SPREAD_IMAGES digits.
SPREAD_DECODES = 4
SPREAD_IMAGES = 1000


@dataclass(frozen=True)
class Row:
    """One row: ``decode`` (one of :data:`DECODES`) of the codes of ``layer``.

    Args:
        layer: the layer whose argmin codes are transmitted.
        decode: how they are decoded.
        seed: seed of the draws of stochastic decodes.
    """

    layer: int
    decode: str
    seed: int = 0

    def __post_init__(self) -> None:
        if self.decode not in DECODES:
            raise ValueError(f"decode must be one of {DECODES}, got {self.decode!r}")

    @property
    def name(self) -> str:
        return f"layer{self.layer}-{self.decode}"

    def decoding(self, seed_offset: int = 0) -> Decoding:
        """The :class:`Decoding` of the row (seeded; ``seed_offset`` for the
        spread's decodes, drawn apart from the row's)."""
        seed = self.seed + seed_offset
        if self.decode.startswith("sample-t"):
            temperature = float(self.decode.removeprefix("sample-t"))
            return Decoding("sample", temperature, seed=seed)
        if self.decode == "average":
            return Decoding("average", 1.0, 8, seed=seed)
        return Decoding(self.decode)


def _path(output: Path, row: Row) -> Path:
    return output / "rows" / f"{row.name}.json"


def load_row(output: Path, row: Row) -> dict[str, Any] | None:
    """The saved result of ``row`` under ``output``, or None."""
    path = _path(output, row)
    return json.loads(path.read_text()) if path.is_file() else None


def save_row(output: Path, row: Row, result: dict[str, Any]) -> None:
    """Writes ``result`` atomically (a stopped run keeps the rows it finished)."""
    atomic_write(_path(output, row), (json.dumps(result, indent=2) + "\n").encode())


#: The argmin codes of the last images encoded, by layer (rows share them).
_CODES: dict[int, tuple[Tensor, Tensor]] = {}


@torch.no_grad()
def argmin_codes(model: HQA, images: Tensor) -> Tensor:
    """The argmin codes (N, h, w) of ``images`` at ``model``'s top layer, kept
    for the next row of the same layer and images."""
    kept = _CODES.get(model.num_layers)
    if kept is not None and kept[0] is images:
        return kept[1]
    batches = range(0, len(images), BATCH_SIZE)
    codes = torch.cat([model.quantize(images[i : i + BATCH_SIZE]) for i in batches])
    _CODES[model.num_layers] = (images, codes)
    return codes


@torch.no_grad()
def decode_row(
    stack: HQA,
    row: Row,
    images: Tensor,
    count: int | None = None,
    progress: bool = False,
) -> Tensor:
    """The row's decodes (N, C, H, W) of ``images``' argmin codes, clamped (the
    first ``count``, decoded in the same whole batches: the same draws)."""
    model = stack.truncate(row.layer).eval()
    codes = argmin_codes(model, images)
    if count is not None:
        codes = codes[: -(-count // BATCH_SIZE) * BATCH_SIZE]
    decoding = row.decoding().bound()  # one stream over the batches
    out = []
    batches = range(0, len(codes), BATCH_SIZE)
    for i in tqdm(batches, desc=f"decode {row.name}", disable=not progress):
        decoded = model.decode(codes[i : i + BATCH_SIZE], decoding, images.shape[-2:])
        out.append(decoded.clamp(0, 1).float())
    return torch.cat(out)[:count]


def measure_row(
    stack: HQA,
    row: Row,
    images: Tensor,
    labels: Tensor,
    classifier: torch.nn.Module,
    progress: bool = False,
) -> dict[str, Any]:
    """MSE, PSNR, class error and decode spread of ``row`` on ``images``."""
    start = time.perf_counter()
    decoded = decode_row(stack, row, images, progress=progress)
    metrics = image_metrics(images, decoded)
    model = stack.truncate(row.layer).eval()
    decoding = row.decoding(seed_offset=1)
    spread = decode_spread(
        model, images[:SPREAD_IMAGES], SPREAD_DECODES, decoding, BATCH_SIZE
    )
    return {
        "layer": row.layer,
        "bits": model.bits(*images.shape[-2:]),
        "decode": row.decode,
        "decoding": {
            "mode": row.decoding().mode,
            "temperature": row.decoding().temperature,
            "num_samples": row.decoding().num_samples
            if row.decode == "average"
            else None,
            "seed": row.seed if row.decoding().stochastic else None,
        },
        "images": len(images),
        "mse": float(np.mean(metrics["mse"])),
        "psnr": float(np.mean(metrics["psnr-rgb"])),
        "class_error": classification_error(classifier, decoded, labels),
        "spread": spread,
        "spread_images": min(SPREAD_IMAGES, len(images)),
        "seconds": time.perf_counter() - start,
        "rfid": {},
    }


def measure_rfid(
    stack: HQA,
    row: Row,
    images: Tensor,
    count: int,
    reference: np.ndarray,
    inception: torch.nn.Module,
    progress: bool = False,
) -> float:
    """rFID of the row's decodes of the first ``count`` images against
    ``reference`` (the Inception features of those originals)."""
    decoded = decode_row(stack, row, images, count, progress)
    features = inception_features(decoded, inception, 50, progress=progress)
    return frechet_distance(features, reference)
