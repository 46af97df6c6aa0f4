"""Tests of compressai_hqa.codec.cli: the ``compressai-hqa`` command line."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, tiny_config
from PIL import Image

from compressai_hqa import HQA, Decoding
from compressai_hqa.codec import cli, commands
from compressai_hqa.codec import format as fmt
from compressai_hqa.codec.api import read_codes
from compressai_hqa.codec.batching import chunk_size, image_bytes, run_chunk
from compressai_hqa.codec.commands import to_uint8
from compressai_hqa.datasets import load_mnist, resize_images
from compressai_hqa.entropy_models import quantize_frequencies

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
# Two sizes, odd and tiny, in file order: two batches of one size each.
SIZES = ((37, 29), (37, 29), (5, 3))


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Tiny 3-layer stacks (1 and 3 channels) with a learnt prior at layer 2."""
    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for channels in (1, 3):
        torch.manual_seed(channels)
        model = HQA(tiny_config(in_channels=channels, num_layers=3)).eval()
        model.set_code_prior(2, quantize_frequencies(range(16)))
        paths[channels] = folder / f"tiny{channels}.pth"
        torch.save(model.state_dict(), paths[channels])
    return paths


def load(path: Path, layer: int) -> HQA:
    return (
        HQA.from_state_dict(torch.load(path, weights_only=True)).truncate(layer).eval()
    )


def write_images(folder: Path, channels: int, seed: int = 0) -> list[torch.Tensor]:
    """PNG files of random 8-bit images; returns them as floats in [0, 1]."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = []
    for i, (h, w) in enumerate(SIZES):
        pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(
            folder / f"img{i}.png"
        )
        images.append(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    return images


def run(capsysbinary, *args: str, stdin: bytes | None = None, monkeypatch=None):
    """Runs the CLI in-process: (exit status, stdout bytes, stderr text)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def one_line_error(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("compressai-hqa: error: "), err
    for word in words:
        assert word in lines[0], lines[0]


def read_png(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        pixels = torch.from_numpy(np.array(img))
    return pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1)


def chunked(model: HQA, items: torch.Tensor, size, operation: str, fn) -> torch.Tensor:
    """``fn`` of the items of images of ``size`` (H, W) as the codec runs it: in
    chunks of the size codec.batching gives such images, on one thread."""
    chunk = chunk_size(image_bytes(model, *size, operation))
    with torch.no_grad():
        return torch.cat([run_chunk(fn, items[i : i + chunk], chunk)
                          for i in range(0, len(items), chunk)])  # fmt: skip


def reference(model: HQA, images, mode: str, seed: int) -> list[torch.Tensor]:
    """What decompress writes for ``images`` (SIZES) compressed in one file:
    argmin codes and decodes in the codec's chunks, the two runs of same-size
    images drawing from one random stream in file order; 8 bits."""
    decoding = Decoding(mode, seed=seed).bound()
    out = []
    for batch in (images[:2], images[2:]):
        x = torch.stack(batch)
        size = tuple(x.shape[-2:])
        codes = chunked(model, x, size, "encode", model.quantize)

        def decode(c: torch.Tensor, size=size) -> torch.Tensor:
            return model.decode(c, decoding, size=size)

        out.extend(to_uint8(chunked(model, codes, size, mode, decode)).unbind(0))
    return out


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mode", ["argmin", "sample", "average"])
def test_round_trip_reproduces_the_model(
    tmp_path: Path, capsysbinary, weights, channels: int, mode: str
) -> None:
    images = write_images(tmp_path / "in", channels)
    out = tmp_path / "x.hqa"
    status, _, err = run(capsysbinary, "compress", tmp_path / "in", "-o", out,
                         "--weights", weights[channels], "--layer", "2")  # fmt: skip
    assert status == 0, err
    status, _, err = run(capsysbinary, "decompress", out, "-o", tmp_path / "dec",
                         "--weights", weights[channels], "--decode", mode,
                         "--seed", "7")  # fmt: skip
    assert status == 0, err
    files = sorted((tmp_path / "dec").iterdir())
    assert [f.name for f in files] == ["00000.png", "00001.png", "00002.png"]
    expected = reference(load(weights[channels], 2), images, mode, 7)
    for file, want in zip(files, expected, strict=True):
        assert torch.equal(read_png(file), want)
    status, stdout, _ = run(capsysbinary, "info", out, "--json")
    info = json.loads(stdout)
    assert info["images"] == 3 and info["layer"] == 2 and info["model"] == "hqa-tiny"
    assert info["sizes"] == [f"37x29x{channels}", f"5x3x{channels}"]
    # 2 x (10 x 8) + 2 x 1 codes of 4 bits, bit-packed
    assert info["payload_bytes"] == (2 * 80 + 2) * 4 // 8


def test_learned_prior_and_stdin_stdout(tmp_path: Path, capsysbinary, weights,
                                        monkeypatch) -> None:  # fmt: skip
    images = write_images(tmp_path / "in", 1)
    png = (tmp_path / "in" / "img0.png").read_bytes()
    status, hqa, err = run(capsysbinary, "compress", "-", "-o", "-", "--weights",
                           weights[1], "--layer", "2", "--prior", "learned",
                           stdin=png, monkeypatch=monkeypatch)  # fmt: skip
    assert status == 0, err
    status, out, err = run(capsysbinary, "decompress", "-", "-o", "-", "--weights",
                           weights[1], stdin=hqa, monkeypatch=monkeypatch)  # fmt: skip
    assert status == 0, err
    decoded = read_png(io.BytesIO(out))  # type: ignore[arg-type]
    assert torch.equal(decoded, reference(load(weights[1], 2), images, "argmin", 0)[0])
    status, out, _ = run(capsysbinary, "info", "-", stdin=hqa, monkeypatch=monkeypatch)
    assert status == 0 and b"prior: learned" in out
    # without a learned prior in the weights
    status, _, err = run(capsysbinary, "compress", tmp_path / "in", "-o",
                         tmp_path / "y.hqa", "--weights", weights[1], "--layer", "1",
                         "--prior", "learned")  # fmt: skip
    assert status == 1
    one_line_error(err, "no learned prior for layer 1")


def _first_test_digits(root: Path, path: Path, count: int) -> Path:
    raw = gzip.decompress((root / "MNIST/raw/t10k-images-idx3-ubyte.gz").read_bytes())
    _, _, rows, cols = struct.unpack(">IIII", raw[:16])
    header = raw[:4] + struct.pack(">III", count, rows, cols)
    path.write_bytes(header + raw[16 : 16 + count * rows * cols])
    return path


def test_a_thousand_digits_at_eight_bits_take_a_thousand_bytes(
    tmp_path: Path, capsysbinary, mnist_root: Path
) -> None:
    idx = _first_test_digits(mnist_root, tmp_path / "digits-idx3-ubyte", 1000)
    out = tmp_path / "digits.hqa"
    status, _, err = run(capsysbinary, "compress", idx, "-o", out, "--layer", "5",
                         "--batch-size", "1000")  # fmt: skip
    assert status == 0, err
    assert "--batch-size is deprecated and has no effect" in err  # kept for scripts
    assert err.strip().endswith(f"1,000 images -> {out}: {out.stat().st_size:,} "
                                "bytes, 8.4 bits per image")  # fmt: skip
    status, stdout, _ = run(capsysbinary, "info", out, "--json")
    info = json.loads(stdout)
    assert info["payload_bytes"] == 1000 and info["header_bytes"] <= 64
    assert out.stat().st_size == 1000 + info["header_bytes"]
    status, _, err = run(capsysbinary, "decompress", out, "-o", tmp_path / "dec", "-q")
    assert status == 0 and err == "", err  # -q: no summary
    from compressai_hqa import zoo

    model = zoo.hqa(layer=5, pretrained=True)
    x = load_mnist(mnist_root, train=False).images[:1000]
    for i in (0, 1, 500, 999):  # each digit coded alone is what the file holds
        codes = chunked(model, x[i : i + 1], (32, 32), "encode", model.quantize)
        x_hat = chunked(model, codes, (32, 32), "argmin", model.decode)
        assert torch.equal(
            read_png(tmp_path / "dec" / f"{i:05d}.png"), to_uint8(x_hat[0])
        )


def test_console_script_bad_data_and_usage_exit_codes(tmp_path: Path, weights) -> None:
    """``python -m compressai_hqa.codec`` in a subprocess: statuses 0, 1 and 2."""
    write_images(tmp_path / "in", 1)

    def codec(*args: object, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "compressai_hqa.codec", *map(str, args)],
            input=stdin, capture_output=True, env=ENV, timeout=300, cwd=tmp_path,
        )  # fmt: skip

    ok = codec("compress", "in/img2.png", "-o", "-", "--weights", weights[1])
    assert ok.returncode == 0 and ok.stdout.startswith(b"\x89HQA"), ok.stderr
    bad = codec("decompress", "-", "-o", "out", "--weights", weights[1],
                stdin=ok.stdout[:-1])  # fmt: skip
    assert bad.returncode == 2 and not (tmp_path / "out").exists()
    one_line_error(bad.stderr.decode(), "truncated")
    usage = codec("decompress", "missing.hqa", "-o", "out")
    assert usage.returncode == 1
    one_line_error(usage.stderr.decode(), "no such file")


def test_bad_inputs_are_one_line_errors(
    tmp_path: Path, capsysbinary, weights, monkeypatch
) -> None:
    write_images(tmp_path / "in", 3)
    good = tmp_path / "good.hqa"
    args = ("--weights", weights[3])
    assert run(capsysbinary, "compress", tmp_path / "in", "-o", good, *args)[0] == 0
    data = good.read_bytes()

    cases = {  # (arguments, status, words of the message)
        "missing source": (("compress", tmp_path / "nope.png", "-o", tmp_path / "a"),
                           1, "no such file"),
        "no glob match": (("compress", str(tmp_path / "*.jpg"), "-o", tmp_path / "a"),
                          1, "no file matches"),
        "existing output": (("compress", tmp_path / "in", "-o", good, *args),
                            1, "exists"),
        "folder output": (("compress", tmp_path / "in", "-o", tmp_path, *args),
                          1, "folder"),
        "layer": (("compress", tmp_path / "in", "-o", tmp_path / "a", *args,
                   "--layer", "4"), 1, "layer 4"),
        "model/weights": (("compress", tmp_path / "in", "-o", tmp_path / "a", *args,
                           "--model", "hqa-celeba64"), 1, "celeba64"),
        "channels": (("compress", tmp_path / "in", "-o", tmp_path / "a", "--weights",
                      weights[1]), 2, "1-channel images; pass --color-mode L"),
        "other model": (("decompress", good, "-o", tmp_path / "d", "--weights",
                         weights[1]), 1, "3-channel"),
        "no shipped weights": (("decompress", good, "-o", tmp_path / "d"), 1,
                               "--weights"),
        "stdout for many": (("decompress", good, "-o", "-", *args), 1, "folder"),
        "unknown option": (("info", "x.hqa", "--frobnicate"), 1, "frobnicate"),
    }  # fmt: skip
    for name, (argv, status, words) in cases.items():
        got, _, err = run(capsysbinary, *argv)
        assert got == status, (name, err)
        one_line_error(err, words)
    assert good.read_bytes() == data  # never overwritten without --force

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes((tmp_path / "in" / "img0.png").read_bytes()[:100])
    (tmp_path / "ckpt.pth").write_bytes(weights[3].read_bytes()[:1000])
    future = bytearray(data)
    future[4] = fmt.VERSION + 1
    future[-4:] = struct.pack("<I", __import__("zlib").crc32(bytes(future[:-4])))
    (tmp_path / "future.hqa").write_bytes(bytes(future))
    data_cases = {
        "not an image": (("compress", tmp_path / "junk", "-o", tmp_path / "a"), "a.png"),
        "truncated image": (("compress", truncated, "-o", tmp_path / "a", *args),
                            "truncated.png"),
        "truncated checkpoint": (("compress", tmp_path / "in", "-o", tmp_path / "a",
                                  "--weights", tmp_path / "ckpt.pth"), "checkpoint"),
        "future version": (("decompress", tmp_path / "future.hqa", "-o",
                            tmp_path / "d", *args), "upgrade"),
        "not a .hqa file": (("info", truncated), "magic"),
    }  # fmt: skip
    for name, (argv, words) in data_cases.items():
        got, _, err = run(capsysbinary, *argv)
        assert got == 2, (name, err)
        one_line_error(err, words)
    assert not (tmp_path / "a").exists() and not (tmp_path / "d").exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_other_weights_decode_with_force(tmp_path: Path, capsysbinary, weights) -> None:
    write_images(tmp_path / "in", 1)
    out = tmp_path / "x.hqa"
    assert run(capsysbinary, "compress", tmp_path / "in", "-o", out, "--weights",
               weights[1])[0] == 0  # fmt: skip
    other = HQA(tiny_config(in_channels=1, num_layers=3))
    torch.save(other.state_dict(), tmp_path / "other.pth")
    argv = (
        "decompress",
        out,
        "-o",
        tmp_path / "d",
        "--weights",
        tmp_path / "other.pth",
    )
    assert run(capsysbinary, *argv)[0] == 1
    assert run(capsysbinary, *argv, "--force")[0] == 0
    assert len(list((tmp_path / "d").iterdir())) == 3


def test_failures_leave_no_partial_output(
    tmp_path: Path, capsysbinary, weights, monkeypatch
) -> None:
    write_images(tmp_path / "in", 1)
    out = tmp_path / "x.hqa"
    assert run(capsysbinary, "compress", tmp_path / "in", "-o", out, "--weights",
               weights[1])[0] == 0  # fmt: skip
    # an existing folder: files are added, clashes need --force
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "00001.png").write_bytes(b"keep")
    argv = ("decompress", out, "-o", tmp_path / "d", "--weights", weights[1])
    status, _, err = run(capsysbinary, *argv)
    assert status == 1 and "00001.png exists (1 of the 3 outputs exists)" in err
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["00001.png"]

    # a failure after two images were decoded: nothing is written
    written = []
    real_png = commands._png

    def failing_png(image):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(1)
        return real_png(image)

    monkeypatch.setattr(commands, "_png", failing_png)
    status, _, _ = run(capsysbinary, "decompress", out, "-o", tmp_path / "e",
                       "--weights", weights[1])  # fmt: skip
    assert status == 130 and len(written) == 2
    assert not (tmp_path / "e").exists()
    monkeypatch.setattr(commands, "_png", real_png)
    status, _, err = run(capsysbinary, *argv, "--force")
    assert status == 0, err
    assert (tmp_path / "d" / "00001.png").read_bytes() != b"keep"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_decode_temperature(tmp_path: Path, capsysbinary, weights) -> None:
    """``--temperature`` reaches the draws: near 0 a sampled decode is the argmin
    one; 0 is refused."""
    write_images(tmp_path / "in", 1)
    out = tmp_path / "x.hqa"
    status, _, err = run(capsysbinary, "compress", tmp_path / "in", "-o", out,
                         "--weights", weights[1], "--layer", "2")  # fmt: skip
    assert status == 0, err
    decoded = {}
    for name, extra in (
        ("argmin", []),
        ("cold", ["--decode", "sample", "--temperature", "1e-6"]),
        ("warm", ["--decode", "sample", "--temperature", "1"]),
    ):
        status, _, err = run(capsysbinary, "decompress", out, "-o", tmp_path / name,
                             "--weights", weights[1], *extra)  # fmt: skip
        assert status == 0, err
        files = sorted((tmp_path / name).iterdir())
        decoded[name] = [read_png(f) for f in files]
    assert all(map(torch.equal, decoded["cold"], decoded["argmin"]))
    assert not all(map(torch.equal, decoded["warm"], decoded["argmin"]))
    status, _, err = run(capsysbinary, "decompress", out, "-o", tmp_path / "bad",
                         "--weights", weights[1], "--temperature", "0")  # fmt: skip
    assert (
        status == 1 and "--temperature must be a finite number > 0" in err
    )  # usage error
    assert not (tmp_path / "bad").exists()


def test_mnist_pngs_round_trip_as_their_digits_with_resize(
    tmp_path: Path, capsysbinary, mnist_root: Path
) -> None:
    """16 raw 28x28 test digits as PNGs at layer 5: coded at their own size they
    mostly decode as other digits (a warning says so); with --resize they are
    coded as the IDX file of the same digits is (28 -> 32 as in training), and
    the shipped classifier reads the labels back."""
    from compressai_hqa.datasets import MNIST_FILES
    from compressai_hqa.metrics.classifier import load_classifier, predict

    raw = gzip.decompress(
        (mnist_root / "MNIST/raw" / MNIST_FILES[False][1]).read_bytes()
    )
    labels = torch.tensor(list(raw[8:24]))
    idx = _first_test_digits(mnist_root, tmp_path / "digits-idx3-ubyte", 16)
    pixels = np.frombuffer(idx.read_bytes()[16:], np.uint8).reshape(16, 28, 28)
    (tmp_path / "png").mkdir()
    for i, digit in enumerate(pixels):
        Image.fromarray(digit).save(tmp_path / "png" / f"{i:02d}.png")
    decoded = {}
    for name, source, extra in (("own size", tmp_path / "png", []),
                                ("resized", tmp_path / "png", ["--resize"]),
                                ("idx", idx, [])):  # fmt: skip
        out = tmp_path / f"{name}.hqa"
        status, _, err = run(capsysbinary, "compress", source, "-o", out, "--layer",
                             "5", *extra)  # fmt: skip
        assert status == 0, err
        warned = "warning: " in err and "pass --resize" in err
        assert warned == (name == "own size"), err
        status, _, err = run(capsysbinary, "decompress", out, "-o", tmp_path / name)
        assert status == 0, err
        files = sorted((tmp_path / name).iterdir())
        decoded[name] = torch.stack([read_png(f) for f in files]).float() / 255
    assert decoded["own size"].shape[-2:] == (28, 28)
    assert torch.equal(decoded["resized"], decoded["idx"])
    classifier = load_classifier()
    wrong = {name: int((predict(classifier, resize_images(x, 32)) != labels).sum())
             for name, x in decoded.items()}  # fmt: skip
    assert wrong["resized"] <= 1 and wrong["own size"] >= 6, wrong


def test_16_bit_and_float_images_are_scaled_to_the_unit_range(
    tmp_path: Path, capsysbinary, weights
) -> None:
    """A 16-bit PNG (PIL mode I;16) of v * 257 and a float TIFF (mode F) of
    v / 255 hold the 8-bit image v exactly: same codes; float values outside
    [0, 1] are refused."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (37, 29), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(pixels).save(tmp_path / "in" / "a8.png")
    Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / "in" / "b16.png")
    Image.fromarray(pixels.astype(np.float32) / 255).save(tmp_path / "in" / "c.tif")
    with Image.open(tmp_path / "in" / "b16.png") as img:
        assert img.mode == "I;16"
    out = tmp_path / "x.hqa"
    status, _, err = run(capsysbinary, "compress", tmp_path / "in", "-o", out,
                         "--weights", weights[1])  # fmt: skip
    assert status == 0, err
    _, codes = read_codes(out.read_bytes(), load(weights[1], 3))
    assert torch.equal(codes[0], codes[1]) and torch.equal(codes[0], codes[2])
    Image.fromarray(pixels.astype(np.float32)).save(tmp_path / "bad.tif")  # 0..255
    status, _, err = run(capsysbinary, "compress", tmp_path / "bad.tif", "-o",
                         tmp_path / "y.hqa", "--weights", weights[1])  # fmt: skip
    assert status == 2
    one_line_error(err, "bad.tif", "not in [0, 1]")
