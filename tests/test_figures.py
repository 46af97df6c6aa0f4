"""Tests of ``python -m compressai_hqa.figures``: each figure from a random model."""

from __future__ import annotations

import json

from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from PIL import Image

from compressai_hqa import HQA
from compressai_hqa.figures.__main__ import HEADER_HEIGHT, LABEL_WIDTH, main
from compressai_hqa.figures.grid import GridLayout

LAYERS, CODES, SIDE = 3, 16, 32  # tiny stack: 3 layers of K = 16, 32x32 digits
SCALE, PADDING = 2, 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=LAYERS, codebook_size=CODES))
    path = tmp_path_factory.mktemp("figures") / "hqa-tiny.pth"
    torch.save({"state_dict": model.state_dict(), "step": 0}, path)
    return path


def _run(tmp_path: Path, checkpoint: Path, *args: str) -> Image.Image:
    output = tmp_path / f"{args[0]}.png"
    main(
        [
            *args,
            "--checkpoint",
            str(checkpoint),
            "--scale",
            str(SCALE),
            "--padding",
            str(PADDING),
            "-o",
            str(output),
        ]
    )
    assert output.stat().st_size > 0
    with Image.open(output) as image:
        image.load()
    return image


def test_layers(tmp_path, checkpoint) -> None:
    image = _run(tmp_path, checkpoint, "layers", "--num", "4")
    # One row of originals plus one per layer, one column per image.
    layout = GridLayout(SCALE, PADDING, LABEL_WIDTH)
    assert image.size == layout.size(1 + LAYERS, 4, SIDE, SIDE)


def test_interpolate(tmp_path, checkpoint) -> None:
    image = _run(
        tmp_path, checkpoint, "interpolate", "--steps", "5", "--pair", "3", "7"
    )
    # One row per layer: the two images around the 5 interpolation decodes.
    layout = GridLayout(SCALE, PADDING, LABEL_WIDTH)
    assert image.size == layout.size(LAYERS, 5 + 2, SIDE, SIDE)


def test_codes(tmp_path, checkpoint) -> None:
    image = _run(tmp_path, checkpoint, "codes")
    # K = 16 codes in sqrt(K) = 4 columns, no labels.
    # (The tiny top code grid is 4x4: each cell decodes one code everywhere.)
    assert image.size == GridLayout(SCALE, PADDING).size(4, 4, SIDE, SIDE)


def test_diversity(tmp_path, checkpoint) -> None:
    image = _run(
        tmp_path,
        checkpoint,
        "diversity",
        "--num",
        "3",
        "--samples",
        "2",
        "--average-of",
        "3",
    )
    # Columns: original, argmin, 2 samples, mean; one row per image.
    layout = GridLayout(SCALE, PADDING, LABEL_WIDTH, HEADER_HEIGHT)
    assert image.size == layout.size(3, 1 + 1 + 2 + 1, SIDE, SIDE)


def test_rate_perception(tmp_path) -> None:
    files = []
    for name, rfid in (("hqa-mse", [80.0, 20.0]), ("other-mse", None)):
        results = {"bits": [8, 64], "mse": [0.05, 0.01], "class-error": [0.3, 0.02]}
        if rfid is not None:
            results["rfid"] = rfid
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"name": name, "results": results}))
        files.append(str(path))
    output = tmp_path / "rp.png"
    main(["rate-perception", "-f", *files, "-o", str(output), "--figsize", "9", "3"])
    assert output.stat().st_size > 0
    with Image.open(output) as image:
        assert image.size == (900, 300)  # figsize x dpi (100)


def test_bad_inputs_are_one_line_errors(tmp_path, checkpoint) -> None:
    with pytest.raises(SystemExit, match="image indices"):
        _run(tmp_path, checkpoint, "layers", "--indices", "0,100")
    with pytest.raises(SystemExit, match=r"1-channel images but .* 3-channel"):
        _run(tmp_path, checkpoint, "layers", "--color-mode", "RGB")
