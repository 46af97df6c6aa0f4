"""Tests of ``python -m compressai_hqa.eval_model`` (CompressAI's eval_model + HQA)."""

from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DATA_ROOT, tiny_config
from PIL import Image

from compressai_hqa import HQA


def _rgb_folder(folder: Path, count: int = 2, size: int = 161) -> Path:
    """Crops of Kodak images (RGB, at least 161 px: MS-SSIM needs > 160)."""
    folder.mkdir()
    for i in range(count):
        with Image.open(DATA_ROOT / "kodak" / f"kodim{i + 1:02d}.png") as img:
            img.convert("RGB").crop((0, 0, size, size)).save(folder / f"img{i}.png")
    return folder


def test_checkpoint_mode_runs_end_to_end(tmp_path: Path) -> None:
    images = _rgb_folder(tmp_path / "images")
    model = HQA(tiny_config(in_channels=3, num_layers=2, codebook_size=256, hidden=16))
    ckpt = tmp_path / "hqa-random.pth.tar"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    out_dir = tmp_path / "results"
    cmd = [
        sys.executable,
        "-m",
        "compressai_hqa.eval_model",
        "checkpoint",
        str(images),
        "-a",
        "hqa",
        "-p",
        str(ckpt),
        "-d",
        str(out_dir),
        "-o",
        "hqa.json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out_dir / "hqa.json").read_text())
    assert result["name"] == "hqa-mse"
    metrics = result["results"]
    for key in ("psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time"):
        assert len(metrics[key]) == 1 and np.isfinite(metrics[key][0]), key
    # eval_model pads 161 -> 192; 48x48 codes of 8 bits in rANS words, per 161^2 pixels.
    ideal = 48 * 48 * 8 / 161**2
    assert ideal <= metrics["bpp"][0] <= (48 * 48 * 8 * 1.001 + 64) / 161**2

    estimated = subprocess.run(
        [*cmd[:-2], "-o", "est.json", "--entropy-estimation"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert estimated.returncode == 0, estimated.stderr
    est = json.loads((out_dir / "est.json").read_text())["results"]
    # Without eval_model's padding the model pads 161 -> 164 itself: 41x41 codes.
    assert est["bpp"][0] == pytest.approx(41 * 41 * 8 / 161**2, rel=1e-6)
