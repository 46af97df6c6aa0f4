"""The options of one training run: the command line of ``examples/train_hqa.py``.

:class:`TrainSettings` holds everything a run is given: the stack's architecture
(:class:`~compressai_hqa.configs.HQAConfig`), its training
(:class:`~compressai_hqa.recipes.Recipe`) and the run's own options.
:meth:`TrainSettings.fingerprint` is what a resumed run must share with the run
that wrote the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compressai_hqa.configs import HQAConfig
from compressai_hqa.families import family_of
from compressai_hqa.recipes import Recipe

__all__ = ["TrainSettings"]


@dataclass(frozen=True)
class TrainSettings:
    """One training run (the command line of ``examples/train_hqa.py``).

    Args:
        config: the stack's architecture.
        recipe: how the stack is trained (e.g.
            :func:`~compressai_hqa.recipes.default_recipe` of ``config``).
        data_root: MNIST root (holding ``MNIST/raw``) or an image folder.
        output: folder for checkpoints, logs and figures.
        dataset: one of :data:`~compressai_hqa.datasets.DATASET_KINDS`;
            default: the model family's (:mod:`compressai_hqa.families`), else
            ``mnist`` when ``data_root`` holds ``MNIST/raw``, else ``folder``.
        layers: train up to this layer (default: all layers of the config).
        start_layer: first layer to train; > 1 needs ``init``.
        init: a checkpoint or state dict holding layers ``1..start_layer-1``.
        steps: steps per layer (default: the recipe's).
        batch_size: global batch size (default: the recipe's).
        resume: continue from ``output/checkpoint.pth``.
        deterministic: deterministic algorithms (bit-identical resumes).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
        seed: seed of the data order, initialisation and noise.
        checkpoint_every: steps between checkpoints (and at each layer's end).
        log_every: steps between log lines (the only host synchronisations).
        compile: wrap the trained layer in ``torch.compile``.
        channels_last: channels-last memory format for convolutions.
        amp: bf16 autocast for the convolutions on CUDA (distances, softmax and
            losses stay in fp32).
        eval_root: images for the end-of-layer MSE (default: the MNIST test
            split for ``mnist``, else the first ``eval_images`` training images).
        eval_images: how many images the end-of-layer MSE uses.
        holdout: keep the last ``holdout`` training images out of training and
            measure the end-of-layer MSE on them (a validation split, so that
            choices are not made on the test set).
        num_workers: DataLoader workers (``folder`` dataset).
        progress: show tqdm progress bars.
        tensorboard: also log to TensorBoard when it is installed.
        system: the name of the Table 3 system trained (for the logs), if any.
    """

    config: HQAConfig
    recipe: Recipe
    data_root: Path
    output: Path
    dataset: str | None = None
    layers: int | None = None
    start_layer: int = 1
    init: Path | None = None
    steps: int | None = None
    batch_size: int | None = None
    resume: bool = False
    deterministic: bool = False
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    compile: bool = False
    channels_last: bool = False
    amp: bool = True
    eval_root: Path | None = None
    eval_images: int = 10_000
    holdout: int = 0
    num_workers: int = 2
    progress: bool = True
    tensorboard: bool = True
    system: str | None = None

    def __post_init__(self) -> None:
        self.recipe.check(self.config)

    @property
    def num_layers(self) -> int:
        return self.config.num_layers if self.layers is None else self.layers

    @property
    def dataset_kind(self) -> str:
        """The dataset transform of the run (see ``dataset``)."""
        if self.dataset is not None:
            return self.dataset
        family = family_of(self.config)
        if family is not None:
            return family.dataset
        mnist = (Path(self.data_root) / "MNIST" / "raw").is_dir()
        return "mnist" if mnist else "folder"

    def steps_of(self, layer: int) -> int:
        return self.steps or self.recipe.layers[layer - 1].steps

    def batch_of(self, layer: int) -> int:
        return self.batch_size or self.recipe.layers[layer - 1].batch_size

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint."""
        n = self.num_layers
        return {
            "config": self.config.to_dict(),
            "recipe": self.recipe.to_dict(),
            "system": self.system,
            "dataset": self.dataset_kind,
            "seed": self.seed,
            "steps": [self.steps_of(i) for i in range(1, n + 1)],
            "batch_size": [self.batch_of(i) for i in range(1, n + 1)],
            "holdout": self.holdout,
        }
