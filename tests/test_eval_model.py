"""Tests of ``python -m compressai_hqa.eval_model`` (CompressAI's eval_model + HQA)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config
from mnist_subset import load_subset
from PIL import Image

from compressai_hqa import HQA, Decoding


def _rgb_folder(folder: Path, count: int = 2, size: int = 161) -> Path:
    """RGB images of real digits (at least 161 px: MS-SSIM needs > 160).

    Each channel is a different 6x6 mosaic of the shipped MNIST test digits.
    """
    digits = load_subset()["test_images"]
    tiles = -(-size // 28)
    folder.mkdir()
    for i in range(count):
        channels = []
        for c in range(3):
            start = (3 * i + c) * tiles * tiles
            grid = digits[start : start + tiles * tiles].reshape(tiles, tiles, 28, 28)
            mosaic = grid.transpose(0, 2, 1, 3).reshape(28 * tiles, 28 * tiles)
            channels.append(mosaic[:size, :size])
        Image.fromarray(np.stack(channels, axis=-1)).save(folder / f"img{i}.png")
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
    # HQA pads 161 -> 164 itself (CompressAI's eval_model would pad to 192 with
    # zeros): 41x41 codes of 8 bits in rANS words, per 161^2 pixels.
    ideal = 41 * 41 * 8 / 161**2
    assert ideal <= metrics["bpp"][0] <= (41 * 41 * 8 * 1.001 + 64) / 161**2
    assert metrics["bits"][0] == pytest.approx(metrics["bpp"][0] * 161**2)

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


# ----------------------------------------------------------------- in-process
COMPRESSAI_KEYS = ("psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time")


def _tiny_checkpoint(path: Path, seed: int = 0, **kwargs) -> Path:
    torch.manual_seed(seed)
    model = HQA(tiny_config(num_layers=3, codebook_size=16, **kwargs))
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def _eval(*args: str) -> dict:
    from compressai_hqa.eval_model.__main__ import main

    return main(list(args))


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # FID of 12 images
def test_mnist_json_has_compressai_keys_and_ours_and_plots(
    tmp_path: Path, monkeypatch, mnist_root: Path
) -> None:
    pytest.importorskip("pytorch_fid")
    monkeypatch.setenv("COMPRESSAI_HQA_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    ckpts = [_tiny_checkpoint(tmp_path / f"hqa-{i}.pth.tar", seed=i) for i in (0, 1)]
    out_dir = tmp_path / "results"
    output = _eval(
        "checkpoint",
        f"mnist:{mnist_root}",
        "-a",
        "hqa",
        "-p",
        *map(str, ckpts),
        "--num-images",
        "40",
        "--batch-size",
        "16",
        "--rfid",
        "--rfid-n",
        "12",
        "--classifier",
        "-d",
        str(out_dir),
        "-o",
        "hqa-mnist.json",
    )
    assert torch.get_num_threads() == threads  # CompressAI's import side effect undone
    saved = json.loads((out_dir / "hqa-mnist.json").read_text())
    assert saved == json.loads(json.dumps(output))
    assert saved["name"] == "hqa-mse" and saved["description"] == "Inference (ans)"
    results = saved["results"]
    extra = ("mse", "bits", "rfid", "rfid-n", "class-error")
    assert set(results) == {*COMPRESSAI_KEYS, *extra}
    assert all(len(v) == 2 for v in results.values())  # one entry per checkpoint
    # 32x32 digits: MS-SSIM is undefined (null, explained in a note).
    assert results["ms-ssim-rgb"] == [None, None]
    assert any("ms-ssim-rgb is null" in note for note in saved["notes"])
    # 4x4 codes of 4 bits = 8 bytes + the 8-byte rANS flush, per 32x32 digit.
    assert results["bits"] == [128.0, 128.0]
    assert results["bpp"] == [128 / 1024] * 2
    assert results["rfid-n"] == [12, 12] and all(v > 0 for v in results["rfid"])
    assert all(0.0 <= v <= 1.0 for v in results["class-error"])
    assert all(0.0 < v < 1.0 for v in results["mse"])
    # The originals' Inception features were computed once for both checkpoints.
    assert len(list((tmp_path / "cache" / "fid_features").glob("*.npy"))) == 1

    from compressai.utils.plot.__main__ import main as plot

    for metric in ("psnr", "mse"):
        png = tmp_path / f"{metric}.png"
        plot(["-f", str(out_dir / "hqa-mnist.json"), "-m", metric, "-o", str(png)])
        assert png.stat().st_size > 0


def test_entropy_estimation_and_per_image_results(
    tmp_path: Path, mnist_root: Path
) -> None:
    ckpt = _tiny_checkpoint(tmp_path / "tiny.pth.tar")
    out_dir = tmp_path / "out"
    output = _eval(
        "checkpoint",
        f"mnist:{mnist_root}",
        "-a",
        "hqa",
        "-p",
        str(ckpt),
        "--num-images",
        "3",
        "--entropy-estimation",
        "--per-image",
        "-d",
        str(out_dir),
    )
    assert output["description"] == "Inference (entropy estimation)"
    assert output["results"]["bits"] == [64.0]  # 16 codes x log2(16), no framing
    assert (out_dir / "hqa-entropy-estimation.json").is_file()
    per_image = json.loads(
        (out_dir / "mnist-test" / "00002-tiny-entropy-estimation.json").read_text()
    )
    assert per_image["results"]["bits"] == 64.0
    assert per_image["results"]["ms-ssim-rgb"] is None


def test_stochastic_decoding_is_seeded() -> None:
    from compressai_hqa.datasets import sample_digits
    from compressai_hqa.eval_model import EvalImages, EvalOptions, evaluate

    model = HQA(tiny_config(num_layers=3, codebook_size=16)).eval()
    digits = sample_digits().images[:8]
    images = EvalImages("digits", digits, tuple(map(str, range(8))))

    def mse(**kw) -> float:
        options = EvalOptions(batch_size=4, **kw)
        return evaluate(model, images, options).metrics["mse"]

    sample3 = Decoding("sample", seed=3)
    assert mse(decoding=sample3) == mse(decoding=sample3)
    assert mse(decoding=sample3) != mse(decoding=Decoding("sample", seed=4))
    argmin = mse()
    average = Decoding("average", num_samples=4, seed=0)
    assert mse(decoding=average) != argmin
    assert mse(decoding=average, entropy_estimation=True) == mse(decoding=average)
    # the decode temperature reaches the draws: near 0 they are the argmin codes
    assert mse(decoding=Decoding("sample", 1e-6, seed=3)) == argmin
    assert mse(decoding=Decoding("sample", 1.0, seed=3)) == mse(decoding=sample3)
    assert EvalOptions(decoding="sample").decoding == Decoding("sample")
    with pytest.raises(ValueError, match="batch_size"):
        EvalOptions(batch_size=0)


def test_images_keep_their_channels(tmp_path: Path) -> None:
    from compressai_hqa.datasets import sample_digits

    gray = tmp_path / "gray"
    gray.mkdir()
    for i, digit in enumerate(sample_digits().images[:2]):
        Image.fromarray((digit[0] * 255).byte().numpy(), mode="L").save(
            gray / f"d{i}.png"
        )
    rgb = _rgb_folder(tmp_path / "rgb", count=1, size=32)
    one = _tiny_checkpoint(tmp_path / "one.pth")
    three = _tiny_checkpoint(tmp_path / "three.pth", in_channels=3)

    def run(folder: Path, ckpt: Path, *extra: str) -> dict:
        return _eval("checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt), *extra)

    assert run(gray, one)["results"]["bits"] == [128.0]
    with pytest.raises(SystemExit, match=r"3-channel images but .* 1-channel.*RGB"):
        run(gray, three)
    with pytest.raises(SystemExit, match=r"1-channel images but .* 3-channel.*L"):
        run(rgb, one)
    assert len(run(rgb, one, "--color-mode", "L")["results"]["bits"]) == 1
    assert len(run(gray, three, "--color-mode", "RGB")["results"]["bits"]) == 1


def test_bad_requests_are_one_line_errors(
    tmp_path: Path, monkeypatch, mnist_root: Path
) -> None:
    from compressai_hqa.families import FAMILIES

    no_weights = dataclasses.replace(FAMILIES["mnist"], weights=None)
    monkeypatch.setitem(FAMILIES, "mnist", no_weights)
    with pytest.raises(SystemExit) as err:
        _eval("pretrained", f"mnist:{mnist_root}", "-a", "hqa-mnist", "-q", "1,2")
    assert str(err.value).startswith("error: no pretrained HQA weights")
    assert "\n" not in str(err.value)

    folder = _rgb_folder(tmp_path / "rgb", count=1, size=32)
    ckpt = _tiny_checkpoint(tmp_path / "three.pth", in_channels=3)
    with pytest.raises(SystemExit, match="--classifier needs the MNIST dataset"):
        _eval("checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt), "--classifier")
    with pytest.raises(SystemExit, match="not found"):
        _eval("checkpoint", str(folder), "-a", "hqa", "-p", str(tmp_path / "no.pth"))

    with pytest.raises(SystemExit, match="--temperature must be a finite number > 0"):
        _eval("checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt),
              "--decode", "sample", "--temperature", "0")  # fmt: skip
    warm = _eval("checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt),
                 "--decode", "sample", "--temperature", "2")  # fmt: skip
    assert warm["settings"]["temperature"] == 2.0

    from compressai_hqa.metrics import inception

    monkeypatch.setattr(inception.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(SystemExit, match=r"rFID needs .*compressai_hqa\[fid\]"):
        _eval("checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt), "--rfid")


def test_unreadable_images_checkpoints_and_mismatched_configs(
    tmp_path: Path, mnist_root: Path
) -> None:
    def one_line(*args: str) -> str:
        with pytest.raises(SystemExit) as err:
            _eval(*args)
        message = str(err.value)
        assert message.startswith("error: ") and "\n" not in message, message
        return message

    ckpt = _tiny_checkpoint(tmp_path / "three.pth", in_channels=3)
    folder = _rgb_folder(tmp_path / "rgb", count=1, size=32)
    (folder / "fake.png").write_bytes(b"this is not a PNG")
    assert "fake.png" in one_line(
        "checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt)
    )
    (folder / "fake.png").unlink()
    data = (folder / "img0.png").read_bytes()
    (folder / "img0.png").write_bytes(data[: len(data) // 2])  # truncated
    assert "img0.png" in one_line(
        "checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt)
    )
    (folder / "img0.png").write_bytes(data)
    with Image.open(folder / "img0.png") as img:
        img.save(folder / "img1.jpg", quality=90)
    jpeg = (folder / "img1.jpg").read_bytes()
    (folder / "img1.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # truncated JPEG
    assert "img1.jpg" in one_line(
        "checkpoint", str(folder), "-a", "hqa", "-p", str(ckpt)
    )
    (folder / "img1.jpg").unlink()

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(ckpt.read_bytes()[:700])
    assert "cannot read checkpoint" in one_line(
        "checkpoint", str(folder), "-a", "hqa", "-p", str(truncated)
    )
    torch.save(
        {"state_dict": HQA("mnist", num_layers=1).state_dict()}, tmp_path / "m.pth"
    )
    assert "does not match" in one_line(
        "checkpoint", f"mnist:{mnist_root}", "-a", "hqa-celeba64", "-p",
        str(tmp_path / "m.pth"), "--num-images", "2",
    )  # fmt: skip
