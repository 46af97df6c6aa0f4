"""DistributedDataParallel training: torchrun, 2 CPU ranks, gloo backend."""

from __future__ import annotations

import os
import subprocess
import sys

from pathlib import Path

import pytest
import torch


@pytest.mark.parametrize(
    "reset_rule", ["paper", "data", "data-rank1-without-seeds", "hams"]
)
def test_two_ranks_hold_identical_state(
    tmp_path: Path, mnist_root: Path, reset_rule: str
) -> None:
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node=2", str(worker), str(mnist_root), str(tmp_path), reset_rule,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    if reset_rule == "hams":  # the EMA codebooks moved, identically on both ranks
        for i in (0, 1):
            codebook = a[f"layers.{i}.quantizer.codebook"]
            assert torch.equal(a[f"seeded.{i}"], b[f"seeded.{i}"])  # rank 0's seeds
            moved = (codebook - a[f"seeded.{i}"]).norm(dim=1)
            assert (moved > 1e-3).float().mean() > 0.5, moved  # most codes moved
        assert a["layers.1.quantizer.cluster_size"].sum() > 256
    else:
        assert a["resets"] > 0  # codes were reset, the same ones on both ranks
    # all-reduced over both ranks: the last window's 3 steps
    assert a["usage.1"].sum() == 3 * 32 * 8 * 8
    assert (tmp_path / "run" / "checkpoint.pth").is_file()  # written by rank 0 only
    assert not list((tmp_path / "run").glob("*.tmp"))
