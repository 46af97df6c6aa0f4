"""Run by tests/test_training_distributed.py under torchrun: trains a few steps
with DistributedDataParallel on CPU (gloo) and saves this rank's final state."""

from __future__ import annotations

import os
import sys

from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from compressai_hqa.families import get_config
from compressai_hqa.layers import EMAQuantizer, ProbabilisticQuantizer
from compressai_hqa.recipes import HAMS_MNIST_RECIPE, HQA_MNIST_RECIPE
from compressai_hqa.training import TrainSettings, train


def main(data_root: str, output: str, reset_rule: str) -> None:
    if reset_rule == "data-rank1-without-seeds":
        # rank 1's batches give no seed: the ranks must still agree (rank 0's choice)
        reset_rule = "data"
        if int(os.environ["RANK"]) == 1:
            seeds = ProbabilisticQuantizer._seeds

            def no_seeds(self, z_e, count):  # type: ignore[no-untyped-def]
                found, points = seeds(self, z_e, count)
                return found[:0], points

            ProbabilisticQuantizer._seeds = no_seeds  # type: ignore[method-assign]
    if reset_rule == "hams":  # EMA codebooks and cross-entropy: all-reduced updates
        config, recipe = (
            get_config("hams-mnist"),
            replace(HAMS_MNIST_RECIPE, reset_window=3),
        )
    else:
        config = get_config("mnist")
        recipe = replace(HQA_MNIST_RECIPE, reset_rule=reset_rule, reset_window=3)
    settings = TrainSettings(
        config=config,
        recipe=recipe,
        data_root=Path(data_root),
        output=Path(output) / "run",
        layers=2,
        steps=12,
        batch_size=32,
        log_every=4,
        checkpoint_every=6,
        eval_images=64,
        device="cpu",
        progress=False,
        tensorboard=False,
    )
    resets = torch.zeros((), dtype=torch.long)

    def count_resets(module: torch.nn.Module, *_: object) -> None:
        if isinstance(module, ProbabilisticQuantizer) and module.training:
            resets.add_(module.reset_mask.sum())

    # the EMA codebooks as seeded from the first batch, before any moving average
    seeded: dict[int, torch.Tensor] = {}
    init_from_data = EMAQuantizer.init_from_data

    def recording_init(self: EMAQuantizer, z_e: torch.Tensor) -> None:
        init_from_data(self, z_e)
        seeded[id(self)] = self.codebook.clone()

    EMAQuantizer.init_from_data = recording_init  # type: ignore[method-assign]
    torch.nn.modules.module.register_module_forward_hook(count_resets)
    model = train(settings)
    state = {k: v for k, v in model.state_dict().items() if k != "_extra_state"}
    usage = {
        f"usage.{i}": layer.quantizer.usage.clone()
        for i, layer in enumerate(model.layers)
    }
    seeds = {
        f"seeded.{i}": seeded[id(layer.quantizer)]
        for i, layer in enumerate(model.layers)
        if isinstance(layer.quantizer, EMAQuantizer)
    }
    rank = dist.get_rank()
    torch.save(
        {**state, **usage, **seeds, "resets": resets}, Path(output) / f"rank{rank}.pt"
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
