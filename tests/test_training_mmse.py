"""Training the MMSE decoders: codes, the table, the resumable loop, export, CLI."""

from __future__ import annotations

import csv
import json
import signal

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import tiny_config

from compressai_hqa.datasets import load_mnist
from compressai_hqa.files import load_torch_file
from compressai_hqa.models import HQA
from compressai_hqa.models.mmse import MMSEDecoders, MMSESpec
from compressai_hqa.training.mmse import (
    MMSESettings,
    code_maps,
    export,
    fit_table,
    load_codes,
    train_layer,
)
from compressai_hqa.training.mmse import loop as loop_module
from compressai_hqa.training.mmse.cli import main


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("stack") / "stack.pth"
    torch.save(HQA(tiny_config(num_layers=3)).state_dict(), path)
    return path


@pytest.fixture
def stack(stack_file: Path) -> HQA:
    return loop_module.load_stack(str(stack_file))


def _settings(root: Path, out: Path, stack_file: Path, **kwargs) -> MMSESettings:
    base = dict(
        data_root=str(root), output=str(out), layer=3, weights=str(stack_file),
        steps=6, batch_size=16, lr=1e-3, holdout=200, eval_every=3, log_every=2,
        checkpoint_every=2, progress=False,
    )  # fmt: skip
    return MMSESettings(**{**base, **kwargs})


def test_code_maps_are_the_transmitted_codes(stack: HQA) -> None:
    images = torch.rand(10, 1, 32, 32)
    codes = code_maps(stack, images, batch_size=4)
    for layer in (1, 2, 3):
        expected = stack.truncate(layer).quantize(images)
        assert codes[layer].dtype == torch.uint8
        torch.testing.assert_close(codes[layer].long(), expected)


def test_codes_cache_is_keyed_by_images(stack: HQA, tmp_path: Path) -> None:
    images = torch.rand(6, 1, 32, 32)
    path = tmp_path / "codes.pt"
    first = load_codes(stack, images, path)
    stamp = path.stat().st_mtime_ns
    again = load_codes(stack, images, path)
    assert path.stat().st_mtime_ns == stamp
    torch.testing.assert_close(first[2], again[2])
    other = load_codes(stack, images.flip(0), path)
    torch.testing.assert_close(other[2], first[2].flip(0))
    assert path.stat().st_mtime_ns != stamp


def test_table_holds_the_conditional_means(stack: HQA) -> None:
    images = torch.rand(5, 1, 32, 32)
    codes = torch.tensor([3, 3, 7, 3, 7]).view(5, 1, 1)
    table = fit_table(stack, 3, images[..., :8, :8], codes)
    torch.testing.assert_close(table.means[3], images[[0, 1, 3], :, :8, :8].mean(0))
    torch.testing.assert_close(table.means[7], images[[2, 4], :, :8, :8].mean(0))
    # a code no image has keeps the stack's argmin decoding of it
    top = stack.truncate(3)
    with torch.no_grad():
        argmin = top.decode(top.code_grids(8, 8, [5]), size=(8, 8))
    torch.testing.assert_close(table.means[5], argmin[0])


def test_table_pools_positions_of_larger_maps(stack: HQA) -> None:
    images = torch.rand(1, 1, 16, 16)
    codes = torch.tensor([[[1, 1], [2, 1]]])
    table = fit_table(stack, 3, images, codes)
    tiles = [images[0, :, :8, :8], images[0, :, :8, 8:], images[0, :, 8:, 8:]]
    torch.testing.assert_close(table.means[1], torch.stack(tiles).mean(0))
    torch.testing.assert_close(table.means[2], images[0, :, 8:, :8])


def _log(run: Path) -> list[dict[str, str]]:
    with (run / "train_log.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_training_lowers_heldout_mse_and_writes_its_run(
    mnist_root: Path, tmp_path: Path, stack_file: Path
) -> None:
    settings = _settings(mnist_root, tmp_path, stack_file, steps=30, eval_every=10)
    metrics = train_layer(settings)
    assert metrics["heldout_mse"] < 0.85 * metrics["heldout_mse_init"]
    assert json.loads((settings.run_dir / "metrics.json").read_text()) == metrics
    rows = _log(settings.run_dir)
    assert [int(r["step"]) for r in rows] == [0, *range(2, 31, 2)]
    assert float(rows[0]["heldout_mse"]) == metrics["heldout_mse_init"]
    assert float(rows[-1]["heldout_mse"]) == pytest.approx(metrics["heldout_mse"])
    state = load_torch_file(settings.run_dir / "model.pth")
    stack = loop_module.load_stack(str(stack_file))
    assert MMSEDecoders.from_state_dict(stack, state).layers == (3,)
    # the held-out digits are the last ones, never trained on
    held = load_mnist(mnist_root).images[-200:]
    assert metrics["heldout_images"] == len(held)


def test_resumed_run_equals_uninterrupted_run(
    mnist_root: Path, tmp_path: Path, stack_file: Path, monkeypatch
) -> None:
    whole = _settings(mnist_root, tmp_path / "a", stack_file)
    expected = train_layer(whole)
    cut = _settings(mnist_root, tmp_path / "b", stack_file)
    real_loss, calls = loop_module.F.mse_loss, []

    def interrupted(*args, **kwargs):  # Ctrl-C during the third step
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(loop_module.F, "mse_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_layer(cut)
    monkeypatch.setattr(loop_module.F, "mse_loss", real_loss)
    assert load_torch_file(cut.run_dir / "checkpoint.pth")["step"] == 3
    with pytest.raises(FileExistsError, match="--resume"):
        train_layer(cut)
    with pytest.raises(ValueError, match="another run"):
        train_layer(replace(cut, resume=True, lr=2e-3))
    resumed = train_layer(replace(cut, resume=True))
    for key in ("heldout_mse_init", "heldout_mse", "steps"):
        assert resumed[key] == expected[key]
    a = load_torch_file(whole.run_dir / "model.pth")
    b = load_torch_file(cut.run_dir / "model.pth")
    for key, value in a.items():
        if torch.is_tensor(value):
            torch.testing.assert_close(b[key], value, rtol=0, atol=0)
    strip = [
        {k: v for k, v in r.items() if k != "images_per_s"} for r in _log(cut.run_dir)
    ]
    assert strip == [
        {k: v for k, v in r.items() if k != "images_per_s"} for r in _log(whole.run_dir)
    ]


def test_export_and_cli(mnist_root: Path, tmp_path: Path, stack_file: Path) -> None:
    table = _settings(mnist_root, tmp_path, stack_file, spec=MMSESpec("table"))
    path = _settings(mnist_root, tmp_path, stack_file, layer=2)
    train_layer(table)
    train_layer(path)
    stack = loop_module.load_stack(str(stack_file))
    sources = [s.run_dir / "model.pth" for s in (table, path)]
    model = export(stack, sources, tmp_path / "mmse.pth")
    assert model.layers == (2, 3)
    stored = torch.load(tmp_path / "mmse.pth", weights_only=True)
    assert stored["decoders.3.means"].dtype == torch.float16
    codes = stack.truncate(3).quantize(torch.rand(2, 1, 32, 32))
    full = MMSEDecoders.from_state_dict(stack, load_torch_file(sources[0]))
    torch.testing.assert_close(model(codes, 3), full(codes, 3), atol=1e-3, rtol=0)
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--data-root", str(mnist_root), "--mmse", str(tmp_path / "mmse.pth"),
            "--weights", str(stack_file), "--holdout", "200", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(out.read_text())
    entry = result["layers"]["3"]
    assert entry["kind"] == "table" and entry["bits"] == 16 * 4
    for split in ("heldout", "test"):
        for decoding in ("argmin", "mmse"):
            assert 0 <= entry[split][decoding]["class_error"] <= 1
    assert entry["heldout"]["mmse"]["mse"] < entry["heldout"]["argmin"]["mse"]
    bad = ["train", "--data-root", str(mnist_root), "--output", str(tmp_path),
           "--layer", "2", "--weights", str(stack_file), "--steps", "6", "-q",
           "--holdout", "200"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(bad)  # a checkpoint exists and --resume is not given
    assert exit_.value.code == 1 and "--resume" in str(exit_.value), exit_.value
