"""The ``"mmse"`` decoding mode: the model's MMSE decoders through every decode
path (the model, a file, the command lines, the evaluation, the figures), the
same bitstream as the other modes, and a clear error without decoders."""

from __future__ import annotations

import sys

from pathlib import Path

import numpy as np
import pytest
import torch

from PIL import Image

from compressai_hqa import DECODE_MODES, HQA, Decoding
from compressai_hqa.codec import cli
from compressai_hqa.codec.api import (
    compress_images,
    decompress_images,
    weights_fingerprint,
)
from compressai_hqa.codec.batching import chunk_size, image_bytes, run_chunk
from compressai_hqa.codec.commands import to_uint8
from compressai_hqa.datasets import load_mnist, sample_digits
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate
from compressai_hqa.figures.grid import GridLayout
from compressai_hqa.figures.hqa import diversity_figure, layers_figure
from compressai_hqa.zoo import hqa
from compressai_hqa.zoo.mmse import PRETRAINED_MMSE, pretrained_mmse
from compressai_hqa.zoo.pretrained import shipped_weights_path

MMSE_FILE = shipped_weights_path(PRETRAINED_MMSE["mnist"][0])


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """The 100 MNIST test digits embedded in the package, 32x32."""
    return sample_digits().images


@pytest.fixture(scope="module")
def stack() -> HQA:
    """The shipped stack, with its shipped MMSE decoders attached lazily."""
    return hqa(pretrained=True)


def _bare(layer: int = 5) -> HQA:
    """The shipped weights without MMSE decoders."""
    return hqa(layer, weights=str(shipped_weights_path("hqa-mnist-0da85963.pth")))


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.mean((a - b) ** 2).item()


def test_mmse_is_a_deterministic_direct_mode() -> None:
    assert DECODE_MODES == ("argmin", "sample", "average", "mmse")
    mmse = Decoding("mmse")
    assert mmse.method.direct and not mmse.stochastic
    assert not any(Decoding(m).method.direct for m in DECODE_MODES if m != "mmse")
    with pytest.raises(ValueError, match="picks no codes"):
        mmse.codes(torch.randn(2, 3, 4))


@torch.no_grad()
def test_mmse_beats_argmin_at_every_layer_on_the_shipped_digits(
    stack: HQA, digits: torch.Tensor
) -> None:
    """The issue's claim on the 100 embedded digits: lower MSE at every rate."""
    size = digits.shape[-2:]
    for layer in range(1, stack.num_layers + 1):
        model = stack.truncate(layer)
        codes = model.quantize(digits)
        argmin = _mse(model.decode(codes, size=size), digits)
        mmse = _mse(model.decode(codes, "mmse", size), digits)
        assert mmse < argmin, layer
        if layer == 5:  # 8 bits: the mean digit of each code
            assert mmse < 0.9 * argmin


@torch.no_grad()
def test_mmse_decodes_are_deterministic_batch_invariant_and_match_the_decoders(
    stack: HQA, digits: torch.Tensor
) -> None:
    size = digits.shape[-2:]
    for layer in (5, 3):
        model = stack.truncate(layer)
        codes = model.quantize(digits[:24])
        whole = model.decode(codes, "mmse", size)
        assert torch.equal(whole, model.decode(codes, Decoding("mmse", seed=3), size))
        parts = torch.cat(
            [
                model.decode(codes[i : i + 5], "mmse", size)
                for i in range(0, len(codes), 5)
            ]
        )
        torch.testing.assert_close(parts, whole, rtol=0, atol=1e-6)
        direct = pretrained_mmse(model)(codes, layer, size)
        torch.testing.assert_close(whole, direct, rtol=0, atol=0)
        assert not torch.equal(whole, model.decode(codes, size=size))
        # reconstruct and the CompressAI bitstream decode the same way
        torch.testing.assert_close(model.reconstruct(digits[:24], "mmse"), whole)
        out = model.compress(digits[:24])
        streamed = model.decompress(out["strings"], out["shape"], "mmse")["x_hat"]
        assert torch.equal(streamed, whole)


@torch.no_grad()
def test_one_file_decodes_with_every_mode(stack: HQA, digits: torch.Tensor) -> None:
    """Decoders are no part of the weights: the fingerprint, the state dict and
    the file are those of the bare stack, which reads the same file."""
    model, bare = stack.truncate(4), _bare(4)
    data = compress_images(model, list(digits[:12].unbind(0)))
    assert data == compress_images(bare, list(digits[:12].unbind(0)))
    assert weights_fingerprint(model) == weights_fingerprint(bare)
    assert model.state_dict().keys() == bare.state_dict().keys()
    codes = model.quantize(digits[:12])
    size = tuple(digits.shape[-2:])
    for mode in DECODE_MODES:
        decoding = Decoding(mode, seed=0)
        images = torch.stack(decompress_images(data, model, decoding))
        bound = decoding.bound()  # one random stream over the codec's chunks

        def decode(c: torch.Tensor, bound: Decoding = bound) -> torch.Tensor:
            return model.decode(c, bound, size)

        chunk = chunk_size(image_bytes(model, *size, mode))
        expected = torch.cat([run_chunk(decode, codes[i : i + chunk], chunk)
                              for i in range(0, len(codes), chunk)])  # fmt: skip
        torch.testing.assert_close(images, expected, rtol=0, atol=1e-6)


def test_without_decoders_mmse_says_how_to_get_them(digits: torch.Tensor) -> None:
    bare = _bare()
    assert bare.mmse_source is None
    codes = bare.quantize(digits[:2])
    with pytest.raises(ValueError, match=r"training\.mmse") as err:
        bare.decode(codes, "mmse")
    assert "layer 5" in str(err.value) and "set_mmse" in str(err.value)
    assert bare.decode(codes).shape == (2, 1, 32, 32)  # the other modes still work
    with pytest.raises(ValueError, match="no MMSE decoders"):
        hqa(3).decode(codes, "mmse")  # untrained, no weights
    with pytest.raises(ValueError, match="trained weights"):
        hqa(3, mmse=str(MMSE_FILE))
    # decoders of other codes are refused when attached ...
    untrained = HQA("mnist").eval()
    with pytest.raises(ValueError, match="differ"):
        untrained.set_mmse(pretrained_mmse(bare))
    # ... or when loaded, with the reason
    untrained.set_mmse(pretrained_mmse)
    with pytest.raises(ValueError, match=r"could not load the MMSE decoders.*differ"):
        untrained.decode(untrained.quantize(digits[:2]), "mmse")


@torch.no_grad()
def test_decoders_attach_lazily_from_a_path_and_survive_truncation(
    digits: torch.Tensor,
) -> None:
    model = hqa(pretrained=True, weights=None, mmse=str(MMSE_FILE))
    assert callable(model.mmse_source) and not isinstance(
        model.mmse_source, torch.nn.Module
    )
    codes = model.quantize(digits[:4])
    decoded = model.decode(codes, "mmse")
    assert isinstance(model.mmse_source, torch.nn.Module)  # loaded once, kept
    assert model.truncate(2).mmse_source is model.mmse_source
    assert decoded.shape == (4, 1, 32, 32)
    bare = _bare(2)
    bare.set_mmse(pretrained_mmse(bare))
    assert bare.mmse_decoders().layers == (1, 2)
    full = _bare(5)
    full.set_mmse(bare.mmse_source)  # decoders of layers 1-2 only: they fit
    with pytest.raises(ValueError, match="none for its layer"):
        full.decode(full.quantize(digits[:1]), "mmse")


def _run_cli(capsysbinary, *args: object) -> tuple[int, str]:
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        status = exit_.code
    return status, capsysbinary.readouterr()[1].decode()


def test_the_command_line_decodes_a_file_with_mmse(
    tmp_path: Path, capsysbinary, mnist_root: Path
) -> None:
    idx = next((mnist_root / "MNIST" / "raw").glob("t10k-images*"))
    out = tmp_path / "digits.hqa"
    weights = shipped_weights_path("hqa-mnist-0da85963.pth")

    def decompress(folder: str, *options: object) -> tuple[int, str]:
        argv = ("decompress", out, "-o", tmp_path / folder, "-q", *options)
        return _run_cli(capsysbinary, *argv)

    assert _run_cli(capsysbinary, "compress", idx, "-o", out, "-q") == (0, "")
    assert decompress("mmse", "--decode", "mmse") == (0, "")
    pngs = sorted((tmp_path / "mmse").glob("*.png"))
    got = torch.from_numpy(np.stack([np.array(Image.open(p)) for p in pngs]))
    expected = decompress_images(out.read_bytes(), hqa(pretrained=True), "mmse")
    assert torch.equal(got, torch.stack([to_uint8(x)[0] for x in expected]))
    # the same file by argmin: other images
    assert decompress("argmin") == (0, "")
    argmin = np.array(Image.open(tmp_path / "argmin" / pngs[0].name))
    assert not np.array_equal(argmin, got[0].numpy())
    # other weights bring no decoders: a one-line usage error, nothing written
    status, err = decompress("w", "--decode", "mmse", "--weights", weights)
    assert status == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert "training.mmse" in err and "--mmse PATH" in err
    assert not (tmp_path / "w").exists()
    options = ("--decode", "mmse", "--weights", weights, "--mmse", MMSE_FILE)
    assert decompress("w", *options) == (0, "")
    assert len(list((tmp_path / "w").glob("*.png"))) == len(pngs)


def _eval(*args: str) -> dict:
    from compressai_hqa.eval_model.__main__ import main

    return main(list(args))


def test_eval_model_decodes_with_mmse(
    tmp_path: Path, mnist_root: Path, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["eval_model"])
    common = ("--num-images", "40", "--batch-size", "16", "--classifier")
    dataset = f"mnist:{mnist_root}"
    runs = {
        mode: _eval(
            "pretrained",
            dataset,
            "-a",
            "hqa-mnist",
            "-q",
            "1,2",
            "--decode",
            mode,
            *common,
        )["results"]
        for mode in ("argmin", "mmse")
    }
    # the same streams (8 and 32 bits of codes, plus rANS's flush)
    assert runs["mmse"]["bits"] == runs["argmin"]["bits"] == [64.0, 96.0]
    pairs = zip(runs["mmse"]["mse"], runs["argmin"]["mse"], strict=True)
    assert all(mmse < argmin for mmse, argmin in pairs)
    images = load_mnist(mnist_root, train=False).images[:40]
    expected = _mse(hqa(5, pretrained=True).reconstruct(images, "mmse"), images)
    assert runs["mmse"]["mse"][0] == pytest.approx(expected, rel=1e-5)

    checkpoint = tmp_path / "stack.pth"
    torch.save({"state_dict": _bare().state_dict()}, checkpoint)
    ckpt = ("checkpoint", dataset, "-a", "hqa", "-p", str(checkpoint), *common)
    with pytest.raises(SystemExit, match=r"training\.mmse.*--mmse PATH"):
        _eval(*ckpt, "--decode", "mmse")
    with pytest.raises(SystemExit, match="--mmse is for --decode mmse"):
        _eval(*ckpt, "--mmse", str(MMSE_FILE))
    result = _eval(*ckpt, "--decode", "mmse", "--mmse", str(MMSE_FILE))["results"]
    assert result["mse"][0] == pytest.approx(expected, rel=1e-5)


@torch.no_grad()
def test_evaluate_and_figures_decode_with_mmse(
    stack: HQA, digits: torch.Tensor
) -> None:
    model = stack.truncate(5)
    images = EvalImages("digits", digits[:8], tuple(map(str, range(8))))
    result = evaluate(
        model, images, EvalOptions(decoding=Decoding("mmse"), batch_size=3), 8
    )
    expected = model.decode(model.quantize(digits[:8]), "mmse", (32, 32))
    torch.testing.assert_close(torch.stack(result.reconstructions), expected)

    layout = GridLayout(1, 0)
    figure = layers_figure(stack, digits[:3], layout, [5], "mmse")
    cells = np.array(figure, dtype=np.float32)[..., 0] / 255  # gray levels
    assert figure.size == (3 * 32, 2 * 32)
    decoded = expected[:3].clamp(0, 1)[:, 0]
    row = torch.from_numpy(cells[32:]).view(32, 3, 32).permute(1, 0, 2)  # row 2
    torch.testing.assert_close(row, decoded, rtol=0, atol=1 / 255)
    columns = diversity_figure(
        model, digits[:2], layout, samples=2, average_of=2, mmse=True
    )
    assert columns.size == (6 * 32, 2 * 32)  # original, argmin, mmse, 2, mean
    with pytest.raises(ValueError, match=r"training\.mmse"):
        diversity_figure(_bare(), digits[:2], layout, mmse=True)


def test_the_figures_command_decodes_with_mmse(tmp_path: Path) -> None:
    """``codes --decode mmse``: the mean training digit of every 8-bit code."""
    from compressai_hqa.figures.__main__ import main as figures

    png = tmp_path / "codes.png"
    figures(
        [
            "codes",
            "--pretrained",
            "--decode",
            "mmse",
            "-o",
            str(png),
            "--scale",
            "1",
            "--padding",
            "0",
        ]
    )
    cells = np.array(Image.open(png))[..., 0].reshape(16, 32, 16, 32)
    model = hqa(pretrained=True)
    with torch.no_grad():
        means = model.decode(model.code_grids(32, 32), "mmse").clamp(0, 1)
    expected = (means[:, 0] * 255).round().reshape(16, 16, 32, 32)
    assert np.array_equal(cells.transpose(0, 2, 1, 3), expected.numpy())
    with pytest.raises(SystemExit, match=r"training\.mmse"):
        figures(
            [
                "layers",
                "--checkpoint",
                str(shipped_weights_path("hqa-mnist-0da85963.pth")),
                "--decode",
                "mmse",
                "-o",
                str(png),
            ]
        )
