"""Code resetting in a real training run: the data-driven rule revives codes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from compressai_hqa import HQA
from compressai_hqa.configs import MNIST
from compressai_hqa.datasets import load_mnist
from compressai_hqa.eval_model.codes import code_statistics
from compressai_hqa.recipes import HQA_MNIST_RECIPE
from compressai_hqa.training import TrainSettings, train
from compressai_hqa.zoo.pretrained import pretrained_state_dict


def _shipped_layer_1(path: Path) -> Path:
    """The shipped stack's layer 1 as a 1-layer state dict (the ``--init``)."""
    stack = HQA.from_state_dict(pretrained_state_dict("mnist"))
    torch.save(stack.truncate(1).state_dict(), path)
    return path


def _codes_used_after_training_layer_2(rule: str, root: Path, output: Path) -> int:
    """Trains layer 2 on the shipped layer 1 (seed 0) on the shipped subset of the
    real MNIST training digits; codes used on its last 1,000 (held out)."""
    settings = TrainSettings(
        config=MNIST,
        recipe=replace(HQA_MNIST_RECIPE, reset_rule=rule),
        data_root=root,
        output=output,
        layers=2,
        start_layer=2,
        init=_shipped_layer_1(output.with_suffix(".init.pth")),
        steps=200,
        batch_size=64,
        holdout=1000,
        eval_images=200,
        log_every=50,
        progress=False,
        tensorboard=False,
    )
    model = train(settings).eval()
    held = load_mnist(root, train=True).images[-1000:]
    return code_statistics(model, held).codes_used


@pytest.mark.usefixtures("one_thread")
def test_data_reset_uses_three_times_the_codes_of_the_paper_rule(
    tmp_path: Path, mnist_root: Path
) -> None:
    paper = _codes_used_after_training_layer_2("paper", mnist_root, tmp_path / "p")
    data = _codes_used_after_training_layer_2("data", mnist_root, tmp_path / "d")
    assert data >= 3 * paper, (data, paper)
