"""Tests of the frontier's training-length section (benchmarks/frontier_training.py):
the held-out loss of each CompressAI lambda per step count and its verdict."""

from __future__ import annotations

import json
import sys

from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

from frontier_training import convergence, section, verdict


def _run(root: Path, n: int, lmbda: float, steps: int, loss: float, **extra) -> None:
    run = root / "mbt2018-mean" / f"N{n}-M{n * 3 // 2}" / f"lmbda-{lmbda:g}"
    run.mkdir(parents=True)
    config = {"N": n, "M": n * 3 // 2, "lmbda": lmbda, "steps": steps}
    (run / "final.json").write_text(json.dumps(config | {"heldout_loss": loss} | extra))


def test_the_table_compares_each_lambda_across_step_counts(tmp_path: Path) -> None:
    """Per model and lambda: the best width's held-out loss at each step count, the
    change made by the last lengthening, the longest run's tail fall, the verdict."""
    sweep, long, longer = tmp_path / "sweep", tmp_path / "long", tmp_path / "longer"
    _run(sweep, 8, 1e-3, 4000, 0.50, flat=0.02)
    _run(sweep, 16, 1e-3, 4000, 0.40, flat=0.03)  # the 4k width chosen
    _run(long, 16, 1e-3, 16000, 0.36, flat=0.004)
    _run(longer, 16, 1e-3, 32000, 0.35, flat=0.003)
    _run(sweep, 16, 1e-2, 4000, 0.90, flat=0.01)
    lines = convergence([sweep, long, longer], ("mbt2018-mean",))
    assert "4,000 steps" in lines[0] and "32,000 steps" in lines[0]
    rows = {line.split("|")[2].strip(): line for line in lines[2:]}
    assert rows["0.001"] == (
        "| mbt2018-mean | 0.001 | 0.4000 | 0.3600 | 0.3500 | -2.78 % (x2) | 0.30 % | yes |"
    )
    assert rows["0.01"] == (
        "| mbt2018-mean | 0.01 | 0.9000 | - | - | - | 1.00 % | no: tail still falling |"
    )
    assert convergence([tmp_path / "nothing"], ("mbt2018-mean",)) == []
    assert section([tmp_path / "nothing"], ("mbt2018-mean",)) == []
    assert (
        "Converged: 1 of the 2 (model, lambda) rows that code anything; 0 more"
        in "\n".join(section([sweep, long, longer], ("mbt2018-mean",)))
    )


def test_a_flat_tail_alone_is_not_convergence() -> None:
    """A flat tail needs a longer run within 5 % of the next-shorter one; a model
    that codes nothing is flagged whatever its loss does."""

    def run(steps: int, loss: float, flat: float, bits: float = 20.0) -> dict:
        return {
            "steps": steps,
            "heldout_loss": loss,
            "flat": flat,
            "heldout_bits": bits,
        }

    assert verdict({16000: run(16000, 1.0, 0.005)}) == "tail flat; no longer run"
    assert verdict({16000: run(16000, 1.0, 0.02)}) == "no: tail still falling"
    falling = {16000: run(16000, 1.0, 0.002), 32000: run(32000, 0.94, 0.002)}
    assert verdict(falling) == "no: longer run still better"
    settled = {16000: run(16000, 1.0, 0.002), 32000: run(32000, 0.96, 0.002)}
    assert verdict(settled) == "yes"
    worse = {4000: run(4000, 1.0, 0.001), 16000: run(16000, 1.01, 0.001)}
    assert verdict(worse) == "yes"
    assert (
        verdict({4000: run(4000, 0.02, 0.0, bits=0.0)}) == "collapsed (codes nothing)"
    )
