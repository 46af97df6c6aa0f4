"""Where a run executes: its ranks under ``torchrun``, its device, and Ctrl-C.

Under ``torch.distributed`` (``WORLD_SIZE`` > 1) each rank trains on its slice
of every global batch; the trained layer is wrapped in DistributedDataParallel,
code usage and normalisation statistics are all-reduced by the layers
themselves, and only rank 0 (:attr:`Ranks.main`) logs and writes. A Ctrl-C stops
every rank at the same step (:class:`StopRequest`).
"""

from __future__ import annotations

import os
import signal

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = [
    "Ranks",
    "StopRequest",
    "configure_backends",
    "init_distributed",
    "select_device",
]


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: ``rank`` of ``world``, on ``local_rank``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process logs and writes (rank 0)."""
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel when there are several ranks."""
        if self.world == 1:
            return module
        on_cuda = next(module.parameters()).is_cuda
        return nn.parallel.DistributedDataParallel(
            module,
            device_ids=[self.local_rank] if on_cuda else None,
            broadcast_buffers=False,
        )

    def collective_device(self) -> torch.device:
        """Where tensors of collective operations live (CUDA for NCCL)."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


def init_distributed() -> Ranks:
    """Joins the process group of ``torchrun`` (NCCL on CUDA, else gloo), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return Ranks(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    )


def select_device(name: str, ranks: Ranks) -> torch.device:
    """The device of ``--device`` (``auto``: CUDA when available); a rank's own
    GPU for a bare ``cuda``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    return device


def configure_backends(deterministic: bool, device: torch.device) -> None:
    """Deterministic algorithms (bit-identical resumes), or the fast ones."""
    if device.type == "cpu":
        # Tiny posterior probabilities would otherwise be subnormal floats, which
        # are very slow on x86 CPUs; flushing them to zero changes no result
        # that matters (they are < 1e-38).
        torch.set_flush_denormal(True)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


class StopRequest:
    """Ctrl-C: the first SIGINT asks for a checkpoint and a clean exit.

    Use as a context manager around the training loop, and ask :meth:`now`
    after each step.
    """

    def __init__(self, ranks: Ranks) -> None:
        self.ranks = ranks
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopRequest:
        def handler(signum: int, frame: Any) -> None:
            if self.requested:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.requested = True

        try:
            self._previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def now(self, at_log: bool) -> bool:
        """Whether to stop after this step: at once on one process; under
        ``torch.distributed`` at the next log interval, on every rank together."""
        if self.ranks.world == 1:
            return self.requested
        if not at_log:
            return False
        flag = torch.tensor(
            [float(self.requested)], device=self.ranks.collective_device()
        )
        dist.all_reduce(flag)
        return bool(flag.item() > 0)
