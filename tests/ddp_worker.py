"""Run by tests/test_training_distributed.py under torchrun: trains a few steps
with DistributedDataParallel on CPU (gloo) and saves this rank's final state."""

from __future__ import annotations

import sys

from pathlib import Path

import torch
import torch.distributed as dist

from compressai_hqa.configs import get_config
from compressai_hqa.training import TrainSettings, train


def main(data_root: str, output: str) -> None:
    settings = TrainSettings(
        config=get_config("mnist"),
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
    model = train(settings)
    state = {k: v for k, v in model.state_dict().items() if k != "_extra_state"}
    usage = {
        f"usage.{i}": layer.quantizer.usage.clone()
        for i, layer in enumerate(model.layers)
    }
    rank = dist.get_rank()
    torch.save({**state, **usage}, Path(output) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
