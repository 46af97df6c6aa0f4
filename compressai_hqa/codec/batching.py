"""How the codec runs images through the network: fixed chunks, one thread, a budget.

**Batch invariance.** On the CPU, oneDNN chooses its convolution kernels by
batch shape and thread count, so one image's activations differ by ~1e-6 with
the batch it is in and the threads that run it; the argmin of a quantiser turns
such a difference into another code wherever two codes nearly tie (the
transmitted codes, and every lower layer's codes when decoding). The codec
therefore runs images of one size in chunks of exactly :func:`chunk_size`
images (a function of the image size and the model only), the last chunk
padded with copies of its first image, on one intra-op thread
(:func:`single_thread`). An image's codes and pixels then depend on the image
(or its codes), the weights and the decode mode only: not on the batch it came
in, its neighbours, its position or the caller's thread count
(``tests/test_codec_batching.py`` checks it; ``benchmarks/codec_speed.py``
measures the cost). Sampled decoding draws from one generator chunk after
chunk, so its draws depend on the file's image order too, as they always have.

**Threads.** One intra-op thread per chunk does not mean one core: deterministic
work (encoding, argmin and mmse decoding) runs up to :func:`workers` chunks at
once, each on a Python thread of its own (:func:`run_chunks`); every chunk still
runs the same one-thread kernels, so the results are the same bytes and pixels
whatever the number of workers. Threads that wait for a busy core simply wait
(no spinning intra-op barrier), so a busy machine costs throughput, not more.

**Memory.** The chunk of an image size comes from
:mod:`compressai_hqa.models.memory`'s estimate of one image's peak memory
(:func:`image_bytes`): as many images as fit in :data:`CHUNK_BYTES`.
:func:`check_budget` refuses (:class:`MemoryLimitError`), before anything is
allocated, work whose chunks would need more than the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from torch import Tensor

from compressai_hqa.entropy_models.context_rans import single_thread
from compressai_hqa.models import HQA
from compressai_hqa.models.memory import OVERHEAD, decode_bytes, encode_bytes

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MAX_MEMORY",
    "MAX_CHUNK",
    "Chunk",
    "ChunkSizes",
    "MemoryLimitError",
    "check_budget",
    "chunk_size",
    "format_bytes",
    "image_bytes",
    "run_chunk",
    "run_chunks",
    "runs",
    "single_thread",
    "workers",
]

#: The most images in one chunk (small images; larger ones go fewer at a time).
MAX_CHUNK = 16
#: Estimated activations of one chunk at most (unless one image needs more).
CHUNK_BYTES = 32 << 20
#: Default budget of :func:`check_budget`: the estimated peak of one chunk plus
#: the ``extra`` bytes the caller holds (codes, payload).
DEFAULT_MAX_MEMORY = 1 << 30


class MemoryLimitError(ValueError):
    """Coding an image would need more memory than the budget allows."""


def chunk_size(image_bytes: int) -> int:
    """Images per chunk for images that each need ``image_bytes``: as many as
    fit in :data:`CHUNK_BYTES`, 1 to :data:`MAX_CHUNK`."""
    return max(1, min(MAX_CHUNK, CHUNK_BYTES // max(image_bytes, 1)))


def image_bytes(model: HQA, height: int, width: int, operation: str) -> int:
    """Estimated peak bytes of ``operation`` on one image (see
    :mod:`compressai_hqa.models.memory`).

    Args:
        model: the stack that will run.
        height, width: the image size.
        operation: ``"encode"``, or a decode mode (``"argmin"``, ``"sample"``,
            ``"average"``).
    """
    if operation == "encode":
        return encode_bytes(model, height, width)
    return decode_bytes(model, height, width, operation)


def check_budget(
    model: HQA,
    sizes: Collection[tuple[int, int]],
    operation: str,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    extra: int = 0,
) -> None:
    """Refuses work whose chunks would need more than ``max_memory``.

    A chunk of images of one size needs ``chunk_size(b) * b`` bytes for images of
    ``b`` bytes each, plus :data:`~compressai_hqa.models.memory.OVERHEAD`; the
    caller holds ``extra`` more (codes, payload). With many distinct sizes the
    check uses a bound (the estimate grows with height and width): the image
    of the largest height and width, or a full chunk.

    Args:
        model: the stack that will run.
        sizes: the distinct (height, width) of the images.
        operation: as for :func:`image_bytes`.
        max_memory: the budget in bytes (None: no limit).
        extra: bytes held besides the chunk.

    Raises:
        MemoryLimitError: the work needs more than ``max_memory``.
    """
    if max_memory is None or not sizes:
        return
    if len(sizes) <= 64:
        needs = {}
        for h, w in sizes:
            per_image = image_bytes(model, h, w, operation)
            needs[(h, w)] = chunk_size(per_image) * per_image
        (h, w), need = max(needs.items(), key=lambda item: item[1])
    else:
        h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
        need = max(image_bytes(model, h, w, operation), CHUNK_BYTES)
    need += OVERHEAD + extra
    if need > max_memory:
        what = "encoding" if operation == "encode" else "decoding"
        raise MemoryLimitError(
            f"{what} {h}x{w} images at layer {model.num_layers} needs about "
            f"{format_bytes(need)}, more than the {format_bytes(max_memory)} "
            "allowed; raise the limit with --max-memory (API: max_memory)"
        )


def runs(
    items: Iterable[tuple[Hashable, Any]], limit: Callable[[Any], int]
) -> Iterator[tuple[Any, list[Any]]]:
    """(size, items) for runs of consecutive ``(size, item)`` pairs of one size,
    each at most ``limit(size)`` long."""
    size, batch = None, []
    for item_size, item in items:
        if batch and (item_size != size or len(batch) == limit(size)):
            yield size, batch
            batch = []
        size = item_size
        batch.append(item)
    if batch:
        yield size, batch  # type: ignore[misc]


class ChunkSizes(dict):
    """(height, width, ...) -> images per chunk, for one model and operation:
    :func:`chunk_size` of :func:`image_bytes`, computed once per size."""

    def __init__(self, model: HQA, operation: str) -> None:
        super().__init__()
        self.model, self.operation = model, operation
        self._needs: dict[tuple[int, ...], int] = {}

    def __missing__(self, size: tuple[int, ...]) -> int:
        per_image = image_bytes(self.model, size[0], size[1], self.operation)
        self[size] = chunk = chunk_size(per_image)
        self._needs[size] = chunk * per_image
        return chunk

    def need(self, size: tuple[int, ...]) -> int:
        """Estimated peak bytes of one chunk of images of ``size`` (computed with
        its chunk, once per size)."""
        self[size]  # fills the chunk and its need on first use
        return self._needs[size]


def _padded(fn: Callable[[Tensor], Tensor], items: Tensor, chunk: int) -> Tensor:
    n = len(items)
    if not 1 <= n <= chunk:
        raise ValueError(f"a chunk holds 1 to {chunk} items, got {n}")
    if n < chunk:
        pad = items[:1].expand(chunk - n, *items.shape[1:])
        items = torch.cat([items, pad])
    with torch.no_grad():  # thread-local: a worker thread starts with gradients on
        return fn(items)[:n]


def run_chunk(fn: Callable[[Tensor], Tensor], items: Tensor, chunk: int) -> Tensor:
    """``fn`` of ``items`` (at most ``chunk`` along dim 0) as one chunk of exactly
    ``chunk``: padded with copies of ``items[0]``, on one thread, then cut back.

    Raises:
        ValueError: ``items`` is empty or longer than ``chunk``.
    """
    with single_thread():
        return _padded(fn, items, chunk)


@dataclass(frozen=True)
class Chunk:
    """One job of :func:`run_chunks`: ``run_chunk(fn, items, size)``, which needs
    about ``need`` bytes at its peak."""

    fn: Callable[[Tensor], Tensor]
    items: Tensor
    size: int
    need: int = 0


def workers(device: torch.device, deterministic: bool) -> int:
    """Chunks :func:`run_chunks` may run at once: the caller's intra-op thread
    count (``torch.get_num_threads()``) for deterministic work on the CPU, else 1
    (a GPU runs one chunk at a time; stochastic decoding draws chunk after chunk
    from one stream)."""
    if device.type != "cpu" or not deterministic:
        return 1
    return max(1, torch.get_num_threads())


def run_chunks(
    chunks: Iterable[Chunk], workers: int = 1, budget: int | None = None
) -> Iterator[Tensor]:
    """:func:`run_chunk` of each chunk, results in order.

    Up to ``workers`` chunks run at once, each on a thread of its own with one
    intra-op thread: the same kernels as one at a time, so the same results. A
    round of chunks run together needs at most ``budget`` bytes (their ``need``
    summed; a chunk alone may need more, :func:`check_budget` has allowed it).

    Args:
        chunks: the jobs, consumed lazily (a round at a time).
        workers: most chunks at once (1: one after another on this thread).
        budget: most bytes of a round (None: no limit).
    """
    if workers <= 1:
        for c in chunks:
            yield run_chunk(c.fn, c.items, c.size)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="hqa-chunk") as pool:
        group: list[Chunk] = []
        for c in chunks:
            full = len(group) == workers
            if group and (full or (budget is not None and _need(group, c) > budget)):
                yield from _run_round(pool, group)
                group = []
            group.append(c)
        if group:
            yield from _run_round(pool, group)


def _need(group: list[Chunk], extra: Chunk) -> int:
    return sum(c.need for c in group) + extra.need


def _run_round(pool: ThreadPoolExecutor, group: list[Chunk]) -> list[Tensor]:
    """The chunks of ``group`` on the pool; one intra-op thread (process-wide)
    from before the first starts until after the last ends."""
    with single_thread():
        futures = [pool.submit(_padded, c.fn, c.items, c.size) for c in group]
        return [f.result() for f in futures]


def format_bytes(count: int) -> str:
    """``count`` bytes in binary units, e.g. ``"1.5 GiB"``."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
