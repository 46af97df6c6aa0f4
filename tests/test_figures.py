"""Tests of ``python -m compressai_hqa.figures``: each figure from a random model.

Besides the size of each PNG, its content: every cell (read back from the PNG at
the position :class:`GridLayout` gives) is the 8-bit rendering of the image the
figure claims to show, computed here from the model (the originals, decodes of
the same codes), and a reconstruction is not a blank cell.
"""

from __future__ import annotations

import json

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config
from PIL import Image

from compressai_hqa import HQA, Decoding
from compressai_hqa.datasets import sample_digits
from compressai_hqa.figures.__main__ import HEADER_HEIGHT, LABEL_WIDTH, main
from compressai_hqa.figures.grid import GridLayout

LAYERS, CODES, SIDE = 3, 16, 32  # tiny stack: 3 layers of K = 16, 32x32 digits
SCALE, PADDING = 2, 3
BLANK = 255  # the grid's white background


def _model(checkpoint: Path) -> HQA:
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    return HQA.from_state_dict(state).eval()


def _cell(image: Image.Image, layout: GridLayout, row: int, col: int) -> np.ndarray:
    """The pixels (H * scale, W * scale, 3) of one cell of a grid PNG."""
    step = SIDE * layout.scale + layout.padding
    left = layout.label_width + layout.padding + col * step
    top = layout.header_height + layout.padding + row * step
    box = (left, top, left + SIDE * layout.scale, top + SIDE * layout.scale)
    return np.asarray(image.convert("RGB").crop(box))


def _rendered(x: torch.Tensor) -> np.ndarray:
    """An image (1, H, W) in [0, 1] as the grid draws it: 8-bit gray, upscaled."""
    gray = (x[0].float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    big = gray.repeat(SCALE, axis=0).repeat(SCALE, axis=1)
    return np.repeat(big[..., None], 3, axis=2)


def _assert_shows(cell: np.ndarray, x: torch.Tensor, tolerance: int = 0) -> None:
    expected = _rendered(x)
    diff = np.abs(cell.astype(int) - expected.astype(int)).max()
    assert diff <= tolerance, f"cell differs from the expected image by {diff}"


def _assert_not_blank(cell: np.ndarray) -> None:
    assert (cell != BLANK).any(), "a blank cell"


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
    # Row 0: the first 4 embedded digits; row l: their decodes at layer l.
    model, digits = _model(checkpoint), sample_digits().images[:4]
    with torch.no_grad():
        for layer in range(1, LAYERS + 1):
            m = model.truncate(layer)
            decoded = m.decode(m.quantize(digits), size=(SIDE, SIDE))
            for j in range(4):
                _assert_shows(_cell(image, layout, 0, j), digits[j])
                cell = _cell(image, layout, layer, j)
                _assert_not_blank(cell)
                _assert_shows(cell, decoded[j])


def test_layers_of_the_pretrained_stack(tmp_path) -> None:
    """Trained weights: each row is a reconstruction of the digit above it."""
    output = tmp_path / "layers.png"
    main(["layers", "--pretrained", "--num", "3", "--layers", "1,5", "--scale",
          str(SCALE), "--padding", str(PADDING), "-o", str(output)])  # fmt: skip
    with Image.open(output) as image:
        image.load()
    layout = GridLayout(SCALE, PADDING, LABEL_WIDTH)
    assert image.size == layout.size(3, 3, SIDE, SIDE)
    from compressai_hqa import zoo

    stack, digits = zoo.hqa(pretrained=True), sample_digits().images[:3]
    with torch.no_grad():
        for row, layer in ((1, 1), (2, 5)):
            m = stack.truncate(layer)
            decoded = m.decode(m.quantize(digits), size=(SIDE, SIDE))
            for j in range(3):
                _assert_shows(_cell(image, layout, row, j), decoded[j])

    def gray(row: int, col: int) -> np.ndarray:
        return _cell(image, layout, row, col)[..., 0].astype(float)

    for j in range(3):
        original = gray(0, j)
        # layer 1 (2048 bits) is close to its digit, closer than to the others
        errors = [np.abs(gray(1, j) - gray(0, k)).mean() for k in range(3)]
        assert errors[j] < 10 and errors[j] == min(errors), errors
        # layer 5 (8 bits) differs from layer 1 and is still a digit, not blank
        assert np.abs(gray(2, j) - gray(1, j)).mean() > 1
        assert gray(2, j).std() > 0.3 * original.std()


def test_codes_of_the_pretrained_stack(tmp_path) -> None:
    """Trained weights: the 256 top codes decode to many different digits."""
    output = tmp_path / "codes.png"
    main(["codes", "--pretrained", "--scale", str(SCALE), "--padding",
          str(PADDING), "-o", str(output)])  # fmt: skip
    with Image.open(output) as image:
        image.load()
    layout = GridLayout(SCALE, PADDING)
    assert image.size == layout.size(16, 16, SIDE, SIDE)
    from compressai_hqa import zoo

    stack = zoo.hqa(pretrained=True)
    cells = [_cell(image, layout, k // 16, k % 16) for k in range(256)]
    with torch.no_grad():
        for k in (0, 17, 255):
            grid = torch.full((1, 1, 1), k)  # one 8-bit code per 32x32 digit
            _assert_shows(cells[k], stack.decode(grid, size=(SIDE, SIDE))[0], 1)
    assert len({cell.tobytes() for cell in cells}) > 16


def test_interpolate(tmp_path, checkpoint) -> None:
    image = _run(
        tmp_path, checkpoint, "interpolate", "--steps", "5", "--pair", "3", "7"
    )
    # One row per layer: the two images around the 5 interpolation decodes.
    layout = GridLayout(SCALE, PADDING, LABEL_WIDTH)
    assert image.size == layout.size(LAYERS, 5 + 2, SIDE, SIDE)
    # The ends of the interpolation (t = 0 and 1) decode the codes of each image.
    model, digits = _model(checkpoint), sample_digits().images[[3, 7]]
    with torch.no_grad():
        for row, layer in enumerate(range(1, LAYERS + 1)):
            m = model.truncate(layer)
            ends = m.decode(m.quantize(digits), size=(SIDE, SIDE))
            _assert_shows(_cell(image, layout, row, 0), digits[0])
            _assert_shows(_cell(image, layout, row, 6), digits[1])
            _assert_shows(_cell(image, layout, row, 1), ends[0])
            _assert_shows(_cell(image, layout, row, 5), ends[1])
            for col in range(1, 6):
                _assert_not_blank(_cell(image, layout, row, col))


def test_codes(tmp_path, checkpoint) -> None:
    image = _run(tmp_path, checkpoint, "codes")
    # K = 16 codes in sqrt(K) = 4 columns, no labels.
    # (The tiny top code grid is 4x4: each cell decodes one code everywhere.)
    layout = GridLayout(SCALE, PADDING)
    assert image.size == layout.size(4, 4, SIDE, SIDE)
    model = _model(checkpoint)
    cells = [_cell(image, layout, k // 4, k % 4) for k in range(CODES)]
    with torch.no_grad():
        for k, cell in enumerate(cells):
            grid = torch.full((1, 4, 4), k)  # code k at every top position
            _assert_not_blank(cell)
            # decoded alone here, in a batch of all 16 codes in the figure
            _assert_shows(cell, model.decode(grid, size=(SIDE, SIDE))[0], 1)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_diversity(tmp_path, checkpoint, temperature: float) -> None:
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
        "--temperature",
        str(temperature),
    )
    # Columns: original, argmin, 2 samples, mean; one row per image.
    layout = GridLayout(SCALE, PADDING, LABEL_WIDTH, HEADER_HEIGHT)
    assert image.size == layout.size(3, 1 + 1 + 2 + 1, SIDE, SIDE)
    # the decodes of the same codes: argmin, then the draws of --seed 0 in order
    model, digits = _model(checkpoint), sample_digits().images[:3]
    with torch.no_grad():
        codes = model.quantize(digits)
        g = torch.Generator().manual_seed(0)
        columns = [digits, model.decode(codes, size=(SIDE, SIDE))]
        sample = Decoding("sample", temperature, generator=g)
        columns += [model.decode(codes, sample, (SIDE, SIDE)) for _ in range(2)]
        average = Decoding("average", temperature, 3, generator=g)
        columns.append(model.decode(codes, average, (SIDE, SIDE)))
    for i in range(3):
        for j, column in enumerate(columns):
            cell = _cell(image, layout, i, j)
            _assert_not_blank(cell)
            _assert_shows(cell, column[i])


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
