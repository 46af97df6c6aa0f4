"""CompressAI's own commands with HQA, run as a user runs them (``python -m
compressai.utils.eval_model`` and ``update_model``), through the start-up hook;
the wrapper ``python -m compressai_hqa.eval_model`` must print the same numbers.
(The wheel installed in a fresh virtualenv: ``test_packaging.py``.)"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from PIL import Image

from compressai_hqa import HQA
from compressai_hqa.datasets import sample_digits
from compressai_hqa.eval_model.compressai_script import adapt
from compressai_hqa.zoo import load_weights

KEYS = ("psnr-rgb", "bpp", "mse", "bits")


def run_module(module: str, *args: str | Path, cwd: Path) -> dict:
    """``python -m module args`` outside the source tree; its JSON output."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True,
        text=True, cwd=cwd, env={**env, "PYTHONWARNINGS": "ignore"}, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout[out.stdout.index("{") :])


def write_digits(folder: Path, count: int) -> Path:
    """The package's sample digits as 8-bit grayscale PNG files."""
    folder.mkdir()
    for i, x in enumerate(sample_digits().images[:count]):
        digit = (x[0] * 255).round().byte().numpy()
        Image.fromarray(digit).save(folder / f"{i:03d}.png")
    return folder


def assert_same_numbers(compressai: dict, wrapper: dict) -> None:
    assert compressai["name"] == wrapper["name"]
    for key in KEYS:
        assert compressai["results"][key] == pytest.approx(
            wrapper["results"][key], rel=1e-9, abs=1e-12
        ), key
    # MS-SSIM is undefined for 32x32 images: NaN in CompressAI's JSON, null here
    assert all(math.isnan(v) for v in compressai["results"]["ms-ssim-rgb"])
    assert all(v is None for v in wrapper["results"]["ms-ssim-rgb"])


@pytest.mark.slow
def test_update_model_exports_and_eval_model_evaluates_a_checkpoint(
    tmp_path: Path,
) -> None:
    """update_model: the weights as a plain state dict named with its hash
    prefix (HQA has no CDF to update); eval_model checkpoint mode on it,
    entropy-estimation too."""
    weights = sorted((ROOT / "zoo").glob("hqa-mnist-*.pth"))[0]
    run = subprocess.run(
        [sys.executable, "-m", "compressai.utils.update_model", "-a", "hqa-mnist",
         "-n", "exported", "-d", str(tmp_path / "out"), str(weights)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (exported,) = (tmp_path / "out").glob("exported-*.pth")
    assert len(exported.stem.split("-")[-1]) == 8  # CompressAI's sha256 prefix
    original = load_weights(weights, progress=False)
    state = torch.load(exported, weights_only=True)
    assert state.keys() == original.keys()
    model = HQA.from_state_dict(state)
    for key, value in HQA.from_state_dict(original).state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(model.state_dict()[key], value), key

    digits = write_digits(tmp_path / "digits", 12)
    for extra in ((), ("--entropy-estimation",)):
        args = ("checkpoint", digits, "-a", "hqa-mnist", "-p", exported, *extra)
        ours = run_module("compressai_hqa.eval_model", *args, cwd=tmp_path)
        theirs = run_module("compressai.utils.eval_model", *args, cwd=tmp_path)
        assert_same_numbers(theirs, ours)
        # the whole stack: one 8-bit code, a 64-bit rANS stream
        assert theirs["results"]["bits"] == [8.0 if extra else 64.0]


def test_colour_images_for_a_grayscale_model_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "colour"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        folder / "c.png"
    )
    out = subprocess.run(
        [sys.executable, "-m", "compressai.utils.eval_model", "pretrained",
         str(folder), "-a", "hqa-mnist", "-q", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert out.returncode != 0
    assert "takes grayscale images" in out.stderr
    assert "--color-mode L" in out.stderr


def test_other_models_keep_compressais_functions() -> None:
    calls = []

    def inference(model, x, vbr_stage=None, vbr_scale=None):  # type: ignore[no-untyped-def]
        calls.append((model, vbr_stage, vbr_scale))
        return {"bpp": 1.0}

    namespace = {"inference": inference, "inference_entropy_estimation": inference}
    adapt(namespace)
    adapt(namespace)  # once only
    assert namespace["inference"].__wrapped__ is inference
    other = torch.nn.Conv2d(3, 3, 1)
    assert namespace["inference"](other, torch.zeros(3, 8, 8), 2, 0.5) == {"bpp": 1.0}
    assert calls == [(other, 2, 0.5)]
    hqa = HQA("mnist", num_layers=1).eval()
    row = namespace["inference_entropy_estimation"](
        hqa, torch.rand(1, 8, 8).expand(3, 8, 8)
    )
    assert calls == [(other, 2, 0.5)]  # the HQA model did not reach CompressAI's
    assert row["bits"] == 4 * 4 * 8 and math.isnan(row["ms-ssim-rgb"])
