"""End-to-end tests of examples/train_hqa.py on real MNIST digits (the shipped
subset, as IDX files; CPU)."""

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

from conftest import tiny_config, wait_for

from compressai_hqa import HQA
from compressai_hqa.layers import ProbabilisticQuantizer
from compressai_hqa.recipes import Recipe
from compressai_hqa.training import (
    TrainSettings,
    gumbel_temperature,
    lr_factor,
    train,
)

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_hqa.py"
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def _cmd(data_root: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, str(SCRIPT), "--config", "mnist", "--data-root", str(data_root),
        "--output", str(output), "--eval-images", "500", "--no-progress",
        "--no-tensorboard", *extra,
    ]  # fmt: skip


def _run(data_root: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cmd(data_root, output, *extra),
        capture_output=True,
        text=True,
        env=ENV,
        timeout=900,
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def test_two_layer_run_lowers_each_layers_loss(
    tmp_path: Path, mnist_root: Path
) -> None:
    out = tmp_path / "run"
    proc = _run(mnist_root, out, "--layers", "2", "--steps", "40", "--batch-size", "32",
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
    # layer 2's normaliser absorbed the statistics of its input while it trained
    # (that layer 1 stayed frozen meanwhile: see the in-process tests below)
    assert model.layers[1].normalizer.count > 0


def test_kill_and_resume_is_bit_identical(tmp_path: Path, mnist_root: Path) -> None:
    opts = ("--layers", "2", "--steps", "24", "--batch-size", "32", "--deterministic",
            "--log-every", "1", "--checkpoint-every", "4")  # fmt: skip
    reference = tmp_path / "reference"
    ref = _run(mnist_root, reference, *opts)
    assert ref.returncode == 0, ref.stderr

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(mnist_root, killed, *opts), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    log = killed / "train_log.csv"
    wait_for(
        proc,
        lambda: (
            log.exists()
            and any(r["layer"] == "2" and r["step"] == "10" for r in _rows(log))
        ),
        "layer 2 logged step 10",
    )
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = torch.load(killed / "checkpoint.pth", weights_only=True)
    assert partial["layer"] == 2 and 8 <= partial["step"] < 24
    assert partial["elapsed_s"] > 0
    resumed = _run(mnist_root, killed, *opts, "--resume")
    assert resumed.returncode == 0, resumed.stderr
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


def test_ctrl_c_saves_a_checkpoint_then_resume_finishes(
    tmp_path: Path, mnist_root: Path
) -> None:
    out = tmp_path / "run"
    opts = ("--layers", "1", "--steps", "60", "--batch-size", "16", "--log-every", "1",
            "--checkpoint-every", "1000")  # fmt: skip
    proc = subprocess.Popen(_cmd(mnist_root, out, *opts), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    log = out / "train_log.csv"
    wait_for(proc, lambda: log.exists() and len(_rows(log)) >= 3, "3 logged steps")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err
    state = torch.load(out / "checkpoint.pth", weights_only=True)
    assert 3 <= state["step"] < 60 and not state["layer_done"]
    assert len(_rows(log)) == state["step"]  # one row per step, none lost
    resumed = _run(mnist_root, out, *opts, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(out / "checkpoint.pth", weights_only=True)["layer_done"]
    assert [int(r["step"]) for r in _rows(log)] == list(range(1, 61))


def test_waiting_on_a_run_that_died_fails_at_once(tmp_path: Path) -> None:
    """The polling helper reports the process's error instead of waiting 600 s."""
    proc = subprocess.Popen(_cmd(tmp_path / "nowhere", tmp_path / "run"), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    start = time.monotonic()
    with pytest.raises(
        pytest.fail.Exception, match=r"(?s)exited with code 1.*--data-root"
    ):
        wait_for(proc, lambda: False, "a logged step", timeout=600)
    assert time.monotonic() - start < 120


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, mnist_root: Path) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    proc = _run(mnist_root, out, "--layers", "1", "--steps", "6", "--batch-size", "16")
    assert proc.returncode == 0, proc.stderr
    return out


def _assert_one_line_error(
    proc: subprocess.CompletedProcess, *words: str, status: int = 2
) -> None:
    """One line on stderr and the exit status of compressai_hqa.commands: 2 for
    data or a checkpoint that cannot be used, 1 for a bad argument or path."""
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train_hqa.py: error:"), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_input_stops_with_one_line_and_keeps_checkpoints(
    tmp_path: Path, trained: Path, mnist_root: Path
) -> None:
    before = _digest(trained / "checkpoint.pth")
    cases = [
        (["--resume", "--data-root", str(tmp_path / "nowhere")], "no such file", 1),
        (["--resume", "--data-root", str(tmp_path)], "MNIST not found", 2),
        (["--resume", "--steps", "7"], "another run", 2),
        (["--config", "celeba64", "--resume"], "another run", 2),
        ([], "--resume", 2),  # a new run would overwrite the checkpoint
    ]
    for extra, words, status in cases:
        cmd = _cmd(
            mnist_root, trained, "--layers", "1", "--steps", "6", "--batch-size", "16"
        )
        proc = subprocess.run(
            cmd + extra, capture_output=True, text=True, env=ENV, timeout=300
        )
        _assert_one_line_error(proc, words, status=status)
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


def test_start_layer_adds_a_layer_on_top(
    tmp_path: Path, trained: Path, mnist_root: Path
) -> None:
    # mnist-wide shares layer 1 with mnist: a wide layer 2 goes on the trained base,
    # validated on 1000 training images held out of training.
    out = tmp_path / "grown"
    proc = subprocess.run(
        [*_cmd(mnist_root, out, "--layers", "2", "--start-layer", "2", "--init",
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


def test_training_step_clears_the_moments_of_every_reset_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from compressai_hqa.training.trainer import training_step

    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=1, codebook_size=8)).train()
    optimizer = torch.optim.RAdam(model.top.parameters(), lr=1e-3)
    x = torch.rand(4, 1, 32, 32)
    for _ in range(3):  # moments of every code fill up
        training_step(model, model.top, optimizer, x, grad_clip=1.0)
    state = optimizer.state[model.top.quantizer.codebook]
    assert (state["exp_avg_sq"] > 0).all()
    before = {k: state[k].clone() for k in ("exp_avg", "exp_avg_sq")}
    reset = torch.zeros(8, dtype=torch.bool)
    reset[[1, 5]] = True

    def end_window(self: ProbabilisticQuantizer, z_e: torch.Tensor) -> None:
        self.reset_mask.copy_(reset)  # codes 1 and 5 "were reset" this step

    monkeypatch.setattr(ProbabilisticQuantizer, "_end_window", end_window)
    training_step(model, model.top, optimizer, x, grad_clip=1.0)
    grad = model.top.quantizer.codebook.grad  # the (clipped) gradient just applied
    beta1, beta2 = optimizer.param_groups[0]["betas"]
    # reset codes: the moments restart from this step's gradient alone
    assert torch.allclose(state["exp_avg"][reset], (1 - beta1) * grad[reset])
    assert torch.allclose(state["exp_avg_sq"][reset], (1 - beta2) * grad[reset] ** 2)
    # the other codes keep their history
    kept = ~reset
    assert torch.allclose(
        state["exp_avg"][kept],
        beta1 * before["exp_avg"][kept] + (1 - beta1) * grad[kept],
    )


# ------------------------------------------------------------------ in-process
def _settings(data_root: Path, output: Path, **kwargs) -> TrainSettings:
    """A tiny stack on the shipped MNIST subset, resets every 3 steps."""
    recipe = Recipe.uniform(3, reset_window=3)
    options = dict(steps=12, batch_size=16, log_every=1, eval_images=64,
                   progress=False, tensorboard=False, recipe=recipe)  # fmt: skip
    options = {**options, **kwargs}
    return TrainSettings(tiny_config(num_layers=3), options.pop("recipe"),
                         data_root, output, **options)  # fmt: skip


def test_the_layers_below_stay_bit_identical_while_a_layer_trains(
    tmp_path: Path, mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compressai_hqa.training import trainer

    def tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        named = [*module.named_parameters(), *module.named_buffers()]
        return {name: t.detach().clone() for name, t in named}

    checked = []
    real = trainer._train_layer

    def train_layer(run: trainer.Run, layer: int, checkpoint: object) -> None:
        below = tensors(run.model.layers[: layer - 1])
        top = tensors(run.model.layers[layer - 1])
        real(run, layer, checkpoint)
        after = tensors(run.model.layers[: layer - 1])
        assert after.keys() == below.keys()
        for name, value in below.items():  # every parameter and buffer, bit for bit
            assert torch.equal(after[name], value), (layer, name)
        changed = tensors(run.model.layers[layer - 1])
        assert not torch.equal(changed["quantizer.codebook"], top["quantizer.codebook"])
        checked.append((layer, len(below)))

    monkeypatch.setattr(trainer, "_train_layer", train_layer)
    train(_settings(mnist_root, tmp_path / "run"))
    assert [layer for layer, _ in checked] == [1, 2, 3]
    assert checked[0][1] == 0 and 0 < checked[1][1] < checked[2][1]


def test_schedules_reach_the_trained_layer_and_the_log(
    tmp_path: Path, mnist_root: Path
) -> None:
    """Code reset in the first 75 % of the steps only; the temperature and the
    learning rate of every step as the schedule functions give them."""
    settings = _settings(mnist_root, tmp_path / "run", layers=2)
    config, steps = settings.recipe, settings.steps
    seen: list[tuple[bool, float]] = []

    def record(module: torch.nn.Module, args: object) -> None:
        if isinstance(module, ProbabilisticQuantizer) and module.training:
            seen.append((module.code_reset, module.temperature.item()))

    hook = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        train(settings)
    finally:
        hook.remove()
    reset_until = int(config.reset_fraction * steps)
    assert reset_until == 9
    temperatures = [
        torch.tensor(
            gumbel_temperature(s, steps, config.temp_start, config.temp_end)
        ).item()  # the float32 buffer's value
        for s in range(steps)
    ]
    for layer in range(2):  # each layer follows its own schedule
        flags, temps = zip(*seen[layer * steps : (layer + 1) * steps], strict=True)
        assert list(flags) == [True] * reset_until + [False] * (steps - reset_until)
        assert list(temps) == temperatures
    assert len(seen) == 2 * steps

    rows = _rows(settings.output / "train_log.csv")
    assert [(int(r["layer"]), int(r["step"])) for r in rows] == [
        (layer, step) for layer in (1, 2) for step in range(1, steps + 1)
    ]
    for row in rows:
        step = int(row["step"])  # steps done
        assert float(row["temperature"]) == pytest.approx(temperatures[step - 1])
        # the learning rate the next step uses (the scheduler has stepped)
        factor = lr_factor(step, steps, config.lr_flat_fraction, config.lr_final_ratio)
        lr = config.layers[int(row["layer"]) - 1].lr
        assert float(row["lr"]) == pytest.approx(lr * factor, rel=1e-12)
    lrs = [float(r["lr"]) for r in rows[:steps]]
    assert lrs[0] == 4e-4 and lrs[-1] == pytest.approx(4e-4 / 10)
