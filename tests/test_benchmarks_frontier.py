"""Tests of the frontier benchmark (benchmarks/frontier*.py) and of the CompressAI
baselines it scores (benchmarks/compressai_baselines.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from pathlib import Path

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import compressai_baselines as cb

from frontier_report import at_equal_rate, interpolate, targets
from frontier_systems import best_runs, compressai_setting


def _digits(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    train, held = cb.load_digits(str(root))
    return train[:512], held[:64]


def test_a_baseline_is_compressai_s_class_and_loss(full_data_root: Path) -> None:
    """The model is compressai.models' class (one channel in and out) and the loss
    CompressAI's lambda * 255^2 * MSE + bits per pixel of the digit."""
    import compressai.models as cm

    torch.manual_seed(0)
    model = cb.build_model("mbt2018-mean", 8, 12)
    assert type(model) is cm.MeanScaleHyperprior
    assert model.g_a[0].in_channels == 1 and model.g_s[-1].out_channels == 1
    mse, bits = torch.tensor(0.01), torch.tensor(2048.0)
    assert float(cb.rd_loss(1e-3, mse, bits)) == pytest.approx(
        1e-3 * 255**2 * 0.01 + 2.0
    )
    train, _ = _digits(full_data_root)
    assert len(cb.load_digits(str(full_data_root))[1]) == cb.HOLDOUT
    x = train[:4]
    mse, bits = cb.rd_terms(model, x)
    assert mse.ndim == bits.ndim == 0 and float(bits.detach()) > 0


def test_a_stopped_baseline_resumes_to_the_same_weights(
    full_data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped after its step-2 checkpoint, a run resumes to exactly the weights
    and held-out metrics of an uninterrupted one; a finished run is not retrained;
    another config in the same folder is refused."""
    train, held = _digits(full_data_root)
    cfg = cb.RunConfig("bmshj2018-factorized", 1e-3, N=8, M=12, steps=6, batch_size=4)
    kwargs = {"checkpoint_every": 2, "eval_every": 2, "progress": False}
    whole = cb.train(cfg, train, held, tmp_path / "whole", **kwargs)

    real, calls = cb.heldout_metrics, []

    def stop_at_step_4(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(cb, "heldout_metrics", stop_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        cb.train(cfg, train, held, tmp_path / "stopped", **kwargs)
    monkeypatch.setattr(cb, "heldout_metrics", real)
    resumed = cb.train(cfg, train, held, tmp_path / "stopped", **kwargs)
    assert resumed == whole
    a, b = (
        torch.load(tmp_path / d / "model.pth", weights_only=True)
        for d in ("whole", "stopped")
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [
        line.split(",")[0]
        for line in (tmp_path / "stopped" / "heldout.csv").read_text().splitlines()[1:]
    ]
    assert steps == ["2", "4", "6"]  # the rows after the checkpoint rewritten once
    assert cb.train(cfg, train, held, tmp_path / "whole", **kwargs) == whole
    other = cb.RunConfig("bmshj2018-factorized", 2e-3, N=8, M=12, steps=6)
    with pytest.raises(SystemExit, match="another config"):
        cb.train(other, train, held, tmp_path / "whole", **kwargs)


def test_each_lambda_is_scored_at_its_best_held_out_width(tmp_path: Path) -> None:
    for (n, m), lmbda, loss in (
        ((8, 12), 1e-3, 0.5),
        ((16, 24), 1e-3, 0.4),
        ((16, 24), 1e-2, 0.9),
        ((32, 48), 1e-2, 1.1),
    ):
        run = tmp_path / "mbt2018-mean" / f"N{n}-M{m}" / f"lmbda-{lmbda:g}"
        run.mkdir(parents=True)
        config = {"N": n, "M": m, "lmbda": lmbda, "heldout_loss": loss, "steps": 4000}
        (run / "final.json").write_text(json.dumps(config))
    (tmp_path / "mbt2018-mean" / "N64-M96" / "lmbda-0.001").mkdir(parents=True)
    picked = [(r["lmbda"], r["N"]) for r in best_runs(tmp_path, "mbt2018-mean")]
    assert picked == [(1e-3, 16), (1e-2, 16)]  # unfinished runs ignored
    longer = tmp_path / "long" / "mbt2018-mean" / "N8-M12" / "lmbda-0.01"
    longer.mkdir(parents=True)
    config = {"N": 8, "M": 12, "lmbda": 1e-2, "heldout_loss": 0.8, "steps": 16000}
    (longer / "final.json").write_text(json.dumps(config))
    picked = best_runs([tmp_path, tmp_path / "long"], "mbt2018-mean")
    assert [(r["lmbda"], r["N"], r["steps"]) for r in picked] == [
        (1e-3, 16, 4000),
        (1e-2, 8, 16000),
    ]
    assert compressai_setting(picked[1]) == "lambda=0.01, N=8, M=12, 16000 steps"


def _hqa(layer: int, bits: float, **decodes: dict) -> list[dict]:
    return [
        {
            "system": "hqa (context prior)",
            "setting": f"layer {layer}, {name}",
            "layer": layer,
            "decoding": name,
            "bits": bits,
            **metrics,
        }
        for name, metrics in decodes.items()
    ]


def test_the_goals_compare_against_compressai_at_equal_or_higher_rate() -> None:
    """rFID and class error up to 128 bits, mmse MSE up to 32 bits, against the
    best CompressAI point between HQA's rate and the limit (CompressAI at its ideal
    bits); none there: n/a."""
    rows = [
        *_hqa(
            5,
            8.0,
            argmin={"rfid": 40.0, "class_error": 0.08, "mse": 0.036},
            mmse={"rfid": 90.0, "class_error": 0.081, "mse": 0.027},
        ),
        *_hqa(
            3,
            80.0,
            argmin={"rfid": 20.0, "class_error": 0.02, "mse": 0.005},
            mmse={"rfid": 30.0, "class_error": 0.015, "mse": 0.004},
        ),
        {
            "system": "mbt2018-mean",
            "setting": "a",
            "bits": 70.0,  # its own stream per digit: compared at the ideal bits
            "ideal_bits": 14.0,
            "rfid": 60.0,
            "class_error": 0.05,
            "mse": 0.031,
        },
        {
            "system": "mbt2018-mean",
            "setting": "b",
            "bits": 200.0,
            "rfid": 5.0,
            "class_error": 0.001,
            "mse": 0.001,
        },
        {
            "system": "webp",
            "setting": "q=0",
            "bits": 60.0,
            "rfid": 1.0,
            "class_error": 0.0,
            "mse": 0.0001,
        },
    ]
    table = "\n".join(targets(rows, ("mbt2018-mean",)))
    lines = {
        tuple(c.strip() for c in line.split("|")[1:4]): line
        for line in table.splitlines()
        if line.startswith("| 5") or line.startswith("| 3")
    }
    assert lines[("5", "8.0", "rfid <= 128 bits")].endswith("| -33 % | met |")
    assert "40.0 (argmin)" in lines[("5", "8.0", "rfid <= 128 bits")]
    assert lines[("5", "8.0", "class error <= 128 bits")].endswith("| **missed** |")
    assert lines[("5", "8.0", "mse <= 32 bits")].endswith("| -13 % | met |")
    assert "14 bits ideal, 70 real" in lines[("5", "8.0", "mse <= 32 bits")]
    assert lines[("3", "80.0", "rfid <= 128 bits")].endswith("| - | n/a |")  # 200 > 128
    assert ("3", "80.0", "mse <= 32 bits") not in lines
    assert "2 of 3 comparisons met" in table


def test_the_frontier_writes_one_table_and_three_plots(
    mnist_root: Path, tmp_path: Path
) -> None:
    """A small run (40 digits, no rFID): every HQA prior and decoding and each
    classical codec as rows; --report-only rewrites the same table from the cache."""
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "frontier.py"),
        "--data-root",
        str(mnist_root),
        "--runs",
        str(tmp_path / "none"),
        "--output",
        str(tmp_path / "cache"),
        "--results",
        str(tmp_path / "results"),
        "--systems",
        "hqa",
        "classical",
        "--num-images",
        "40",
        "--rfid-n",
        "0",
        "--threads",
        "1",
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=900)
    table = (tmp_path / "results" / "frontier.md").read_text()
    for prior in ("uniform", "learned", "context"):
        for setting in ("layer 5, argmin", "layer 5, sample T=3", "layer 1, mmse"):
            assert f"| hqa ({prior} prior) | {setting} |" in table
    for codec in ("jpeg | q=1", "webp | q=0", "avif | q=0"):
        assert f"| {codec} |" in table
    for name in ("mse", "rfid", "class-error"):
        assert (tmp_path / "results" / f"frontier-{name}.png").stat().st_size > 0
    data = json.loads((tmp_path / "results" / "frontier.json").read_text())
    context = [r for r in data["rows"] if r["system"] == "hqa (context prior)"]
    assert all(r["bits"] >= r["ideal_bits"] > 0 for r in context)
    (tmp_path / "results" / "frontier.md").unlink()
    subprocess.run([*command, "--report-only"], check=True, timeout=300)
    again = (tmp_path / "results" / "frontier.md").read_text()

    def rows(text: str) -> list[str]:  # the command line differs
        return [line for line in text.splitlines() if line.startswith("|")]

    assert rows(again) == rows(table) and len(rows(table)) > 3 * 14


def test_a_rerun_codes_nothing_it_has_cached(tmp_path: Path) -> None:
    """Points cached in --output come back without reconstructions: a rerun that
    adds one CompressAI run re-encodes no classical digit and no HQA layer."""
    import frontier

    args = argparse.Namespace(
        systems=("hqa", "classical"),
        output=tmp_path,
        runs=[tmp_path / "none"],
        temperature=3.0,
    )
    images = torch.rand(3, 1, 32, 32)
    first = list(frontier.points(args, images))
    assert all(p.x_hat is not None for p in first) and len(first) > 14
    for p in first:
        (tmp_path / f"{frontier.slug(p.system, p.setting)}.json").write_text("{}")
    again = list(frontier.points(args, images))
    assert [(p.system, p.setting) for p in again] == [
        (p.system, p.setting) for p in first
    ]
    assert all(p.x_hat is None for p in again)


def test_compressai_curves_are_read_at_hqa_s_rates_in_log_log() -> None:
    """Between the two lambdas either side of HQA's rate, linear in log value
    against log bits; outside a model's rates, or from collapsed points, nothing."""
    assert interpolate([(10.0, 0.04), (40.0, 0.01)], 20.0) == pytest.approx(0.02)
    assert interpolate([(10.0, 0.04), (40.0, 0.01)], 10.0) == pytest.approx(0.04)
    assert interpolate([(10.0, 0.04), (40.0, 0.01)], 50.0) is None
    rows = [
        *_hqa(4, 20.0, mmse={"rfid": 30.0, "class_error": 0.05, "mse": 0.011}),
        *_hqa(5, 8.0, mmse={"rfid": 90.0, "class_error": 0.08, "mse": 0.027}),
    ]
    for bits, ideal, mse in (
        (128.0, 0.0, 0.06),
        (128.0, 10.0, 0.04),
        (200, 40.0, 0.01),
    ):
        rows.append(
            {
                "system": "mbt2018-mean",
                "setting": f"{ideal}",
                "bits": bits,
                "ideal_bits": ideal,
                "mse": mse,
                "class_error": 0.1,
                "rfid": None,
            }
        )
    lines = at_equal_rate(rows, ("mbt2018-mean",))
    cells = {tuple(c.strip() for c in line.split("|")[1:4]): line for line in lines}
    assert cells[("4", "20.0", "mse")].endswith("| 0.0110 (mmse) | 0.0200 |")
    assert cells[("4", "20.0", "class error")].endswith("| 10.00 % |")
    assert ("4", "20.0", "rfid") in cells  # HQA has it; the model has none: "-"
    assert cells[("4", "20.0", "rfid")].endswith("| - |")
    assert cells[("5", "8.0", "mse")].endswith("| - |")  # only a collapsed point below
