"""Tests of ``python -m compressai_hqa.demo`` (the README's first command)."""

from __future__ import annotations

import subprocess
import sys

from pathlib import Path

from PIL import Image


def test_demo_prints_the_layer_table_and_writes_the_grid(tmp_path: Path) -> None:
    png = tmp_path / "demo.png"
    proc = subprocess.run(
        [sys.executable, "-m", "compressai_hqa.demo", "--output", str(png)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.lstrip().startswith("layer")
    )
    rows = [line.split() for line in lines[header + 1 : header + 6]]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5]
    assert [int(r[1]) for r in rows] == [2048, 512, 128, 32, 8]  # ideal bits per digit
    assert int(rows[-1][2]) == 8  # the 8-bit code travels in an 8-byte rANS stream
    mse = [float(r[3]) for r in rows]
    assert all(0 < m < 0.1 for m in mse) and mse[0] < mse[-1]
    with Image.open(png) as img:
        # 6 rows (originals + 5 layers) of 16 digits at 2x, 2 px padding, 64 px labels
        assert img.size == (64 + 16 * (64 + 2) + 2, 6 * (64 + 2) + 2)
