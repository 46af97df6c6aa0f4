"""End-to-end tests of examples/train_hqa.py on the real MNIST data (CPU)."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import sys
import time

from pathlib import Path

import pytest
import torch

from conftest import DATA_ROOT

from compressai_hqa import HQA

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_hqa.py"
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def _cmd(output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, str(SCRIPT), "--config", "mnist", "--data-root", str(DATA_ROOT),
        "--output", str(output), "--eval-images", "500", "--no-progress",
        "--no-tensorboard", *extra,
    ]  # fmt: skip


def _run(output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(output, *extra), capture_output=True, text=True, env=ENV, timeout=900
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def test_two_layer_run_lowers_each_layers_loss(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _run(out, "--layers", "2", "--steps", "40", "--batch-size", "32",
                "--lr", "4e-3", "--log-every", "5", "--checkpoint-every", "15")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out / "train_log.csv")
    for layer in ("1", "2"):
        losses = [float(r["loss"]) for r in rows if r["layer"] == layer]
        assert len(losses) == 8
        assert sum(losses[-2:]) < 0.85 * sum(losses[:2]), losses
    metrics = _rows(out / "layer_metrics.csv")
    assert [m["layer"] for m in metrics] == ["1", "2"]
    assert all(0 < float(m["eval_mse"]) < 0.2 for m in metrics)
    assert (out / "recon_layer1.png").stat().st_size > 0
    checkpoint = torch.load(out / "checkpoint.pth", weights_only=True)
    assert (checkpoint["layer"], checkpoint["step"], checkpoint["layer_done"]) == (
        2,
        40,
        True,
    )
    model = HQA.from_state_dict(checkpoint["state_dict"])
    assert model.num_layers == 2
    plain = HQA.from_state_dict(torch.load(out / "model.pth", weights_only=True))
    for key, value in plain.state_dict().items():
        if key != "_extra_state":
            assert torch.equal(value, model.state_dict()[key])
    # the lower layer was frozen while layer 2 trained: its statistics were not touched
    assert model.layers[1].normalizer.count > 0


def test_kill_and_resume_is_bit_identical(tmp_path: Path) -> None:
    opts = ("--layers", "2", "--steps", "24", "--batch-size", "32", "--deterministic",
            "--log-every", "1", "--checkpoint-every", "4")  # fmt: skip
    reference = tmp_path / "reference"
    assert _run(reference, *opts).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed, *opts), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    log = killed / "train_log.csv"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and any(
            r["layer"] == "2" and r["step"] == "10" for r in _rows(log)
        ):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = torch.load(killed / "checkpoint.pth", weights_only=True)
    assert partial["layer"] == 2 and 8 <= partial["step"] < 24
    assert partial["elapsed_s"] > 0
    assert _run(killed, *opts, "--resume").returncode == 0
    # the resumed layer's wall time includes the time spent before the kill
    wall = {r["layer"]: float(r["wall_s"]) for r in _rows(killed / "layer_metrics.csv")}
    assert wall["2"] > partial["elapsed_s"]

    a, b = _tensors(reference / "model.pth"), _tensors(killed / "model.pth")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    columns = ("layer", "step", "loss", "recon", "kl", "commit", "codes_used")
    ref_rows = [[r[c] for c in columns] for r in _rows(reference / "train_log.csv")]
    assert ref_rows == [[r[c] for c in columns] for r in _rows(log)]


def test_ctrl_c_saves_a_checkpoint_then_resume_finishes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    opts = ("--layers", "1", "--steps", "60", "--batch-size", "16", "--log-every", "1",
            "--checkpoint-every", "1000")  # fmt: skip
    proc = subprocess.Popen(_cmd(out, *opts), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    log = out / "train_log.csv"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(_rows(log)) >= 3:
            break
        time.sleep(0.05)
    if proc.poll() is not None:  # died (or finished) before it could be interrupted
        pytest.fail(f"the run ended first (status {proc.returncode}): "
                    f"{proc.communicate()[1][-2000:]}")  # fmt: skip
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err
    state = torch.load(out / "checkpoint.pth", weights_only=True)
    assert 3 <= state["step"] < 60 and not state["layer_done"]
    assert len(_rows(log)) == state["step"]  # one row per step, none lost
    assert _run(out, *opts, "--resume").returncode == 0
    assert torch.load(out / "checkpoint.pth", weights_only=True)["layer_done"]
    assert [int(r["step"]) for r in _rows(log)] == list(range(1, 61))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    proc = _run(out, "--layers", "1", "--steps", "6", "--batch-size", "16")
    assert proc.returncode == 0, proc.stderr
    return out


def _assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train_hqa.py: error:"), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_input_stops_with_one_line_and_keeps_checkpoints(
    tmp_path: Path, trained: Path
) -> None:
    before = _digest(trained / "checkpoint.pth")
    cases = [
        (["--resume", "--data-root", str(tmp_path / "nowhere")], "MNIST not found"),
        (["--resume", "--steps", "7"], "another run"),
        (["--config", "celeba64", "--resume"], "another run"),
        ([], "--resume"),  # a new run would overwrite the checkpoint
    ]
    for extra, words in cases:
        cmd = _cmd(trained, "--layers", "1", "--steps", "6", "--batch-size", "16")
        proc = subprocess.run(
            cmd + extra, capture_output=True, text=True, env=ENV, timeout=300
        )
        _assert_one_line_error(proc, words)
        assert _digest(trained / "checkpoint.pth") == before


def test_bad_image_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--config", "celeba64", "--data-root", str(empty),
         "--output", str(tmp_path / "a")],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    _assert_one_line_error(proc, "no images")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "face.png").write_bytes(b"not a png at all")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--config", "celeba64", "--data-root", str(corrupt),
         "--output", str(tmp_path / "b")],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    _assert_one_line_error(proc, "cannot read image", "face.png")


def test_init_from_another_config_is_refused(tmp_path: Path, trained: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--config", "celeba64", "--data-root", str(tmp_path),
         "--output", str(tmp_path / "c"), "--start-layer", "2", "--init",
         str(trained / "model.pth")],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    _assert_one_line_error(proc, "config 'mnist'", "celeba64")


def test_start_layer_adds_a_layer_on_top(tmp_path: Path, trained: Path) -> None:
    # mnist-wide shares layer 1 with mnist: a wide layer 2 goes on the trained base,
    # validated on 1000 training images held out of training.
    out = tmp_path / "grown"
    proc = subprocess.run(
        [*_cmd(out, "--layers", "2", "--start-layer", "2", "--init",
               str(trained / "model.pth"), "--steps", "6", "--batch-size", "16",
               "--holdout", "1000"), "--config", "mnist-wide"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    below = _tensors(trained / "model.pth")
    grown = _tensors(out / "model.pth")
    assert any(k.startswith("layers.1.") for k in grown)
    for key, value in below.items():
        assert torch.equal(grown[key], value), key
    assert (
        HQA.from_state_dict(torch.load(out / "model.pth")).config.name == "mnist-wide"
    )
    metrics = _rows(out / "layer_metrics.csv")
    assert [(m["layer"], m["eval_images"]) for m in metrics] == [("2", "500")]
