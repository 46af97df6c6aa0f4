"""Training data: the datasets of a run, and batches that are deterministic
functions of (seed, layer, step).

:func:`load_training_data` reads the dataset of ``--dataset`` (``mnist``,
``faces`` or ``folder``) and the images of the end-of-layer MSE.

In-memory datasets (MNIST, a face folder) live as one tensor on the training
device and batches are gathered there, with no per-sample work and no host
synchronisation. Folders too large for memory go through a ``DataLoader``. In
both cases the images of step ``s`` of layer ``l`` depend only on the seed, the
layer and ``s``, so a resumed run sees exactly the batches the uninterrupted run
would have seen. Under ``torch.distributed`` each rank takes its slice of the
global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from compressai_hqa.datasets import (
    DATASET_KINDS,
    RandomCropFolder,
    TensorImages,
    load_face_folder,
    load_mnist,
)

from .distributed import Ranks
from .settings import TrainSettings

__all__ = [
    "LoaderBatches",
    "TensorBatches",
    "epoch_permutation",
    "load_training_data",
]


def epoch_permutation(n: int, seed: int, layer: int, epoch: int) -> Tensor:
    """The order of the ``n`` training images in one epoch of one layer."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + layer * 10_007 + epoch)
    return torch.randperm(n, generator=g)


class _Schedule:
    """Which global indices the batch of each step takes (drop-last epochs)."""

    def __init__(
        self, n: int, batch_size: int, seed: int, rank: int, world: int
    ) -> None:
        if batch_size % world:
            raise ValueError(
                f"batch size {batch_size} is not divisible by {world} ranks"
            )
        if n < batch_size:
            raise ValueError(
                f"the dataset has {n} images, fewer than one batch ({batch_size})"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self.local = batch_size // world
        self.rank = rank
        self._cached: tuple[tuple[int, int], Tensor] | None = None

    def indices(self, layer: int, step: int) -> Tensor:
        epoch, i = divmod(step, self.per_epoch)
        key = (layer, epoch)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, epoch_permutation(self.n, self.seed, layer, epoch))
        start = i * self.batch_size + self.rank * self.local
        return self._cached[1][start : start + self.local]


class TensorBatches:
    """Batches of an in-memory image tensor, gathered on its device.

    Args:
        images: (N, C, H, W) floats in [0, 1], already on the training device.
        batch_size: global batch size (split across ranks).
        seed: data-order seed.
        rank, world: this process's rank and the number of ranks.
    """

    def __init__(
        self, images: Tensor, batch_size: int, seed: int, rank: int = 0, world: int = 1
    ) -> None:
        self.images = images
        self.schedule = _Schedule(len(images), batch_size, seed, rank, world)
        self._device_perm: tuple[tuple[int, int], Tensor] | None = None

    def batches(self, layer: int, start: int, stop: int) -> Iterator[Tensor]:
        for step in range(start, stop):
            idx = self.schedule.indices(layer, step).to(
                self.images.device, non_blocking=True
            )
            yield self.images.index_select(0, idx)


class _StepSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, epoch key)`` so that datasets can seed per-epoch crops."""

    def __init__(self, schedule: _Schedule, layer: int, start: int, stop: int) -> None:
        self.schedule, self.layer, self.start, self.stop = schedule, layer, start, stop

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for step in range(self.start, self.stop):
            key = self.layer * 1_000_000 + step // self.schedule.per_epoch
            for index in self.schedule.indices(self.layer, step).tolist():
                yield index, key

    def __len__(self) -> int:
        return (self.stop - self.start) * self.schedule.local


class LoaderBatches:
    """Batches of a map-style dataset through a ``DataLoader`` (large folders).

    Args:
        dataset: indexed by ``(index, epoch_key)`` pairs (e.g.
            :class:`~compressai_hqa.datasets.RandomCropFolder`), returns (C, H, W)
            floats in [0, 1]; ``epoch_key`` identifies the layer and epoch.
        batch_size, seed, rank, world: as for :class:`TensorBatches`.
        device: where batches go.
        num_workers: DataLoader worker processes.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
        num_workers: int = 2,
    ) -> None:
        self.dataset = dataset
        self.schedule = _Schedule(len(dataset), batch_size, seed, rank, world)  # type: ignore[arg-type]
        self.device = device
        self.num_workers = num_workers

    def batches(self, layer: int, start: int, stop: int) -> Iterator[Tensor]:
        loader = DataLoader(
            self.dataset,
            batch_size=self.schedule.local,
            sampler=_StepSampler(self.schedule, layer, start, stop),
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
        )
        for batch in loader:
            yield batch.to(self.device, non_blocking=True)


def load_training_data(
    settings: TrainSettings, device: torch.device, ranks: Ranks
) -> tuple[TensorBatches | LoaderBatches, Tensor]:
    """The training batches and the images of the end-of-layer MSE."""
    kind, cfg = settings.dataset_kind, settings.config
    if kind not in DATASET_KINDS:
        raise ValueError(f"--dataset must be one of {DATASET_KINDS}, got {kind!r}")
    batch = settings.batch_of(1)
    if any(settings.batch_of(i) != batch for i in range(1, settings.num_layers + 1)):
        raise ValueError("all layers must use the same batch size in one run")
    source: TensorBatches | LoaderBatches
    if kind == "folder":
        if settings.holdout:
            raise ValueError("--holdout needs an in-memory dataset (mnist or faces)")
        folder = RandomCropFolder(
            settings.data_root, cfg.image_size, cfg.in_channels, settings.seed
        )
        evals = _eval_set(settings, lambda: _first_crops(folder, settings.eval_images))
        source = LoaderBatches(
            folder,
            batch,
            settings.seed,
            device,
            ranks.rank,
            ranks.world,
            settings.num_workers,
        )
        return source, evals.images[: settings.eval_images].to(device)
    if kind == "mnist":
        if cfg.in_channels != 1:
            raise ValueError(
                f"MNIST is grayscale; config {cfg.name!r} has "
                f"{cfg.in_channels} channels"
            )
        images = load_mnist(settings.data_root, train=True, size=cfg.image_size).images

        def default() -> TensorImages:
            return load_mnist(settings.data_root, train=False, size=cfg.image_size)

    else:
        images = load_face_folder(
            settings.data_root, cfg.image_size, cfg.in_channels
        ).images

        def default() -> TensorImages:
            return TensorImages(images)

    if settings.holdout:
        if settings.holdout >= len(images):
            raise ValueError(f"--holdout {settings.holdout} leaves no training images")
        images, held = images[: -settings.holdout], images[-settings.holdout :]

        def default() -> TensorImages:
            return TensorImages(held)

    evals = _eval_set(settings, default)
    source = TensorBatches(
        images.to(device), batch, settings.seed, ranks.rank, ranks.world
    )
    return source, evals.images[: settings.eval_images].to(device)


def _eval_set(
    settings: TrainSettings, default: Callable[[], TensorImages]
) -> TensorImages:
    """The images of ``--eval-root``, else ``default()``."""
    if settings.eval_root is None:
        return default()
    return load_face_folder(
        settings.eval_root, settings.config.image_size, settings.config.in_channels
    )


def _first_crops(folder: RandomCropFolder, n: int) -> TensorImages:
    """The first crop of each of the first ``n`` images of a folder."""
    return TensorImages(torch.stack([folder[i] for i in range(min(n, len(folder)))]))
