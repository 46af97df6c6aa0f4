"""The systems of the frontier benchmark (``benchmarks/frontier.py``), one adapter each.

Every adapter turns the test digits (N, 1, 32, 32) in [0, 1] into :class:`Point`\\s:
the reconstructions and, per digit, the real bits (what a user stores) and the
ideal bits (-log2 p of what is coded, where the system has a probability model).

* ``classical``: JPEG, WebP, AVIF (Pillow) and JPEG XL (``pillow-jxl-plugin``, when
  installed) at their lowest quality settings, on the 8-bit digit; real file bytes.
* ``compressai``: CompressAI's models retrained by
  ``benchmarks/compressai_baselines.py``, zero-padded 32 -> 64 as CompressAI's
  ``eval_model`` pads them; real bytes of their per-image rANS streams (each pays
  its own flush) and the ideal bits of their likelihoods.
* ``kmeans``: 256-centroid k-means on pixels (8 bits) and its product codes on
  HQA's code grid at 32 and 128 bits (:mod:`compressai_hqa.baselines.kmeans`).
* HQA's points (every prior and decoding) are built in ``frontier.py``.
"""

from __future__ import annotations

import io
import json

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from torch import Tensor

__all__ = [
    "CLASSICAL",
    "Point",
    "best_runs",
    "classical_points",
    "compressai_points",
    "compressai_setting",
    "finished_runs",
    "to_uint8",
]


@dataclass
class Point:
    """One system at one setting, on every test digit."""

    system: str  # e.g. "webp", "bmshj2018-hyperprior", "hqa"
    setting: str  # e.g. "q=0", "lambda=1e-04", "layer 5, context, mmse"
    x_hat: Tensor | None  # (N, 1, 32, 32) float in [0, 1]; None: cached
    bits: list[float]  # real bits per digit
    ideal_bits: list[float] | None = None
    notes: dict = field(default_factory=dict)


def to_uint8(x: Tensor) -> np.ndarray:
    """(N, 1, H, W) in [0, 1] -> (N, H, W) uint8, rounded as a PNG stores it."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()


def _pil_codec(fmt: str, quality_key: str = "quality", **options):
    def encode(image: np.ndarray, quality: int) -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, fmt, **{quality_key: quality}, **options)
        return buffer.getvalue()

    return encode


def _jxl_available() -> bool:
    try:
        import pillow_jxl  # noqa: F401
    except ImportError:
        return False
    return True


#: codec -> (encoder, qualities): the lowest settings each format offers and a
#: few above, up to where the file reaches about 2,048 bits per digit.
CLASSICAL = {
    "jpeg": (_pil_codec("JPEG", optimize=True), (1, 10)),
    "webp": (_pil_codec("WEBP", method=6), (0, 10, 30)),
    "avif": (_pil_codec("AVIF"), (0,)),
    "jxl": (_pil_codec("JXL", effort=9), (0, 10, 30)),
}


def classical_points(
    images: Tensor,
    codecs: tuple[str, ...],
    known: Callable[[str, str], bool] | None = None,
) -> Iterator[Point]:
    """Each codec of ``codecs`` at each of its qualities on every digit; a point
    ``known(codec, setting)`` says is cached comes without reconstructions."""
    from PIL import Image
    from tqdm import tqdm

    pixels = to_uint8(images)
    for name in codecs:
        if name == "jxl" and not _jxl_available():
            print("jxl skipped: pip install pillow-jxl-plugin")
            continue
        encode, qualities = CLASSICAL[name]
        if name == "jxl":
            import pillow_jxl  # noqa: F401  (registers the JXL plugin)
        for quality in qualities:
            if known is not None and known(name, f"q={quality}"):
                yield Point(name, f"q={quality}", None, [])  # cached
                continue
            bits, decoded = [], []
            for image in tqdm(
                pixels, desc=f"{name} q={quality}", leave=False, disable=None
            ):
                data = encode(image, quality)
                bits.append(8.0 * len(data))
                decoded.append(np.asarray(Image.open(io.BytesIO(data)).convert("L")))
            x_hat = torch.from_numpy(np.stack(decoded)).float().div(255).unsqueeze(1)
            yield Point(name, f"q={quality}", x_hat, bits)


@torch.no_grad()
def _compressai_batch(model, x: Tensor) -> tuple[Tensor, list[float], list[float]]:
    from compressai_baselines import pad, unpad

    padded = pad(x)
    out = model.compress(padded)
    real = [
        8.0 * sum(len(strings[i]) for strings in out["strings"]) for i in range(len(x))
    ]
    x_hat = unpad(model.decompress(out["strings"], out["shape"])["x_hat"])
    likelihoods = model(padded)["likelihoods"].values()
    ideal = sum(-torch.log2(p).flatten(1).sum(1) for p in likelihoods)
    return x_hat.clamp(0, 1), real, ideal.tolist()


def best_runs(runs: Path | Sequence[Path], name: str) -> list[dict]:
    """For each lambda, the finished run of ``name`` with the lowest held-out loss
    among the widths and step counts trained in ``runs`` (one or more runs folders
    of ``compressai_baselines.py``: ``widths.json`` chose one width at a single
    lambda; where other widths or longer runs exist, the held-out digits pick per
    lambda)."""
    best: dict[float, dict] = {}
    for config in finished_runs(runs, name):
        lmbda = config["lmbda"]
        if lmbda not in best or config["heldout_loss"] < best[lmbda]["heldout_loss"]:
            best[lmbda] = config
    return [best[k] for k in sorted(best)]


def finished_runs(runs: Path | Sequence[Path], name: str) -> Iterator[dict]:
    """The final metrics and config of every finished run of ``name`` in ``runs``
    (``final.json``, with its folder as ``"dir"``)."""
    for root in [runs] if isinstance(runs, Path) else runs:
        for final in sorted((root / name).glob("N*-M*/lmbda-*/final.json")):
            config = json.loads(final.read_text())
            config["dir"] = final.parent
            yield config


def compressai_setting(config: dict) -> str:
    """The table's setting of a CompressAI run."""
    return (
        f"lambda={config['lmbda']:g}, N={config['N']}, M={config['M']}, "
        f"{config['steps']} steps"
    )


def compressai_points(
    images: Tensor,
    runs: Sequence[Path],
    models: tuple[str, ...],
    batch_size: int = 500,
    known: Callable[[str, str], bool] | None = None,
) -> Iterator[Point]:
    """Each model of ``models`` at every lambda trained in ``runs`` (its best width
    on the held-out digits, :func:`best_runs`); a point ``known(model, setting)``
    says is cached comes without reconstructions (``x_hat`` None)."""
    from compressai_baselines import build_model
    from tqdm import tqdm

    for name in models:
        for config in best_runs(runs, name):
            if known is not None and known(name, compressai_setting(config)):
                yield Point(name, compressai_setting(config), None, [])  # cached
                continue
            n, m = config["N"], config["M"]
            model = build_model(name, n, m)
            state = torch.load(config["dir"] / "model.pth", weights_only=True)
            model.load_state_dict(state)  # with the CDF tables stored at the end
            model.eval()
            parts, real, ideal = [], [], []
            for i in tqdm(
                range(0, len(images), batch_size), desc=name, leave=False, disable=None
            ):
                x_hat, r, b = _compressai_batch(model, images[i : i + batch_size])
                parts.append(x_hat)
                real += r
                ideal += b
            yield Point(
                name,
                compressai_setting(config),
                torch.cat(parts),
                real,
                ideal,
                {"N": n, "M": m, "steps": config["steps"]},
            )
