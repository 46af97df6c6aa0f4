"""benchmarks/table3.py --smoke: every system trained, evaluated, tabulated, plotted."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

from pathlib import Path

import pytest

from conftest import ROOT
from PIL import Image

from compressai_hqa.systems import SYSTEMS

SCRIPT = ROOT / "benchmarks" / "table3.py"
RATES = ("8", "32", "128", "512", "2048")
NUMBER = re.compile(r"^\d+\.\d+$")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # 600 s guards against a hang; this whole test takes about 70 s on 2 cores
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--no-progress"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the markdown table under ``heading``."""
    block = text.split(heading, 1)[1].split("\n\n", 2)[1]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.slow
def test_the_smoke_run_writes_a_well_formed_table_and_plots(
    tmp_path: Path, mnist_root: Path
) -> None:
    # --train-only trains and stops; the full run then reuses that training
    first = _run("--data-root", str(mnist_root), "--output", str(tmp_path),
                 "--smoke", "--train-only", "--systems", "hqa")  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    assert "training hqa-s0" in first.stderr
    assert (tmp_path / "runs" / "hqa-s0" / "model.pth").is_file()
    assert not (tmp_path / "eval").exists() and not (tmp_path / "results").exists()
    proc = _run("--data-root", str(mnist_root), "--output", str(tmp_path), "--smoke")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training hqa-s0" not in proc.stderr and "training hams-s0" in proc.stderr
    results = tmp_path / "results"
    text = (results / "table3.md").read_text()
    labels = [s.label for s in SYSTEMS.values()]

    at8 = _table(text, "## 8 bits per image")
    assert [row[0] for row in at8] == [
        "No compression", "k-means on pixels (floor)", *labels,
    ]  # fmt: skip
    for row in at8[1:]:
        assert len(row) == 9
        ours = [row[1], row[3], row[5], row[8]]  # MSE, rFID, class error, argmin MSE
        assert all(NUMBER.match(v) for v in ours), row
    hqa = next(row for row in at8 if row[0] == SYSTEMS["hqa"].label)
    assert (hqa[2], hqa[4], hqa[6], hqa[7]) == ("0.053", "22.8", "12.4", "sample")

    for heading in ("## MSE at every rate", "## rFID at every rate",
                    "## class. error (%) at every rate"):  # fmt: skip
        rows = _table(text, heading)
        assert [row[0] for row in rows[1:]] == ["k-means on pixels (floor)", *labels]
        for row in rows[1:]:  # every system at every rate
            assert len(row) == 1 + len(RATES)
            assert all(NUMBER.match(v) for v in row[1:]), (heading, row)

    report = json.loads((results / "table3.json").read_text())
    assert report["rfid_n"] == 10 and report["test_n"] == 100
    assert report["train_s"] > 0 and report["eval_s"] > 0
    assert "Compute in all: training" in text
    for row in report["rows"][1:]:
        assert sorted(row["rates"], key=int) == list(RATES)
    for name in ("rfid", "mse", "class-error"):
        with Image.open(results / f"table3-{name}.png") as image:
            assert image.format == "PNG" and image.size == (600, 450)

    # finished parts are reused: a rerun only tabulates (and may narrow the systems)
    evals = sorted(p.name for p in (tmp_path / "eval").glob("*.json"))
    assert len(evals) == 5 * (1 + len(SYSTEMS))
    again = _run("--data-root", str(mnist_root), "--output", str(tmp_path),
                 "--smoke", "--systems", "hqa")  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training" not in again.stderr
    assert sorted(p.name for p in (tmp_path / "eval").glob("*.json")) == evals
    rows = _table((results / "table3.md").read_text(), "## 8 bits per image")
    assert [row[0] for row in rows] == [
        "No compression", "k-means on pixels (floor)", SYSTEMS["hqa"].label,
    ]  # fmt: skip
    # the compute totals count the tabulated systems' files, whichever run made them
    narrowed = json.loads((results / "table3.json").read_text())
    hqa_evals = [
        *(tmp_path / "eval").glob("hqa-s0-*"),
        *(tmp_path / "eval").glob("kmeans-*"),
    ]
    assert narrowed["eval_s"] == pytest.approx(
        sum(json.loads(p.read_text())["wall_s"] for p in hqa_evals)
    )
    with (tmp_path / "runs" / "hqa-s0" / "layer_metrics.csv").open() as f:
        hqa_train = sum(float(r["wall_s"]) for r in csv.DictReader(f))
    assert narrowed["train_s"] == pytest.approx(hqa_train) and hqa_train > 0
    assert narrowed["train_s"] < report["train_s"]
