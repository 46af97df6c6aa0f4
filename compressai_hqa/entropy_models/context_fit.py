"""Fitting a layer's context model to code maps (resumable, with progress).

:func:`fit_context_model` trains a :class:`ContextNet` on the code maps of a
training split (every position of every map, in a seeded random order each
epoch): ``epochs`` in floating point, then ``quantized_epochs`` of
quantisation-aware training, and exports the integer
:class:`~compressai_hqa.entropy_models.context.ContextModel`. With a
``checkpoint`` path it saves its state atomically about 20 times an epoch and
resumes from it. :func:`model_bits` measures a model's exact rate (its integer
frequencies) on held-out maps.
"""

from __future__ import annotations

import math
import time

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from torch import Tensor

from compressai_hqa.entropy_models.context import ContextModel
from compressai_hqa.entropy_models.context_coder import ContextCoder
from compressai_hqa.entropy_models.context_net import ContextNet, codebook_groups
from compressai_hqa.files import atomic_save, load_torch_file

__all__ = ["ContextFitConfig", "causal_offsets", "fit_context_model", "model_bits"]

_FORMAT = "compressai_hqa.context_fit/1"


@dataclass(frozen=True)
class ContextFitConfig:
    """What a context model is and how it is trained.

    Attributes:
        rows: rows above a code that its neighbourhood reaches.
        cols: columns left and right that it reaches (the current row: left).
        width: hidden width H.
        depth: hidden layers.
        groups: groups G of the two-symbol coding of a code.
        codebook_inputs: embeddings through the layer's codebook, and groups of
            close codebook vectors (else free embeddings, groups by index).
        epochs: epochs of float training.
        quantized_epochs: epochs of quantisation-aware training.
        batch_size: positions per step.
        lr: peak learning rate of the float phase (one cycle).
        quantized_lr: learning rate of the quantised phase (cosine to 0).
        seed: initialisation and order of the positions.
    """

    rows: int = 2
    cols: int = 2
    width: int = 128
    depth: int = 1
    groups: int = 16
    codebook_inputs: bool = True
    epochs: int = 4
    quantized_epochs: int = 1
    batch_size: int = 4096
    lr: float = 3e-3
    quantized_lr: float = 3e-4
    seed: int = 0


def causal_offsets(rows: int, cols: int, height: int, width: int) -> tuple:
    """Neighbours (dy, dx) of a code: ``rows`` rows above within ``cols``
    columns either side, and ``cols`` codes to its left, limited to what a
    ``height`` x ``width`` map can hold; at least the left neighbour."""
    r, c = min(rows, height - 1), min(cols, width - 1)
    above = [(dy, dx) for dy in range(-r, 0) for dx in range(-c, c + 1)]
    return tuple(above + [(0, dx) for dx in range(-c, 0)]) or ((0, -1),)


class _Positions:
    """Contexts, positions and symbols of flat indices into maps (N, h, w)."""

    def __init__(self, maps: Tensor, offsets: tuple, symbols: Tensor) -> None:
        n, self.h, self.w = maps.shape
        k = int(symbols.numel())
        top = max(-dy for dy, _ in offsets)
        left = max([0] + [-dx for _, dx in offsets])
        right = max([0] + [dx for _, dx in offsets])
        canvas = F.pad(maps.long(), (left, right, top, 0), value=k)
        self.ch, self.cw = canvas.shape[1:]
        self.canvas = canvas.reshape(-1)
        self.link = torch.tensor([dy * self.cw + dx for dy, dx in offsets])
        self.corner = top * self.cw + left
        self.symbols = symbols[maps.reshape(-1).long()]
        self.count = n * self.h * self.w

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        image, t = index // (self.h * self.w), index % (self.h * self.w)
        y, x = t // self.w, t % self.w
        base = image * (self.ch * self.cw) + self.corner + y * self.cw + x
        context = self.canvas[base.unsqueeze(1) + self.link]
        return context, y * self.w + x, self.symbols[index]


def _checkpoint(path: Path | None, config: ContextFitConfig) -> dict[str, Any] | None:
    if path is None or not Path(path).is_file():
        return None
    state = load_torch_file(path)
    if state.get("format") != _FORMAT or state.get("config") != asdict(config):
        raise ValueError(f"{path} is the checkpoint of another fit: remove it")
    return state


def fit_context_model(
    train: Tensor,
    holdout: Tensor | None,
    config: ContextFitConfig,
    codebook: Tensor | None = None,
    checkpoint: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> ContextModel:
    """Trains the context model of code maps and exports its integers.

    Args:
        train: (N, h, w) int64 code maps of the training split.
        holdout: (N', h, w) maps whose loss is logged after each epoch, or None.
        config: the model and the training.
        codebook: (K, D) codebook of the layer (for ``codebook_inputs``).
        checkpoint: file to save the state to and resume from.
        log: receives progress lines (None: silent).

    Returns:
        The fitted :class:`ContextModel` (the grid of positions is (h, w)).
    """
    k = int(codebook.shape[0]) if codebook is not None else int(train.max()) + 1
    _, h, w = train.shape
    offsets = causal_offsets(config.rows, config.cols, h, w)
    torch.manual_seed(config.seed)
    use_codebook = config.codebook_inputs and codebook is not None
    symbols = codebook_groups(codebook, config.groups) if use_codebook else None
    symbols = torch.arange(k) if symbols is None else symbols
    net = ContextNet(
        k,
        symbols,
        config.groups,
        offsets,
        (h, w),
        config.width,
        config.depth,
        codebook if use_codebook else None,
    )
    held = None if holdout is None else _Positions(holdout, offsets, symbols)
    _Fit(net, _Positions(train, offsets, symbols), config, checkpoint, log).run(held)
    return net.export()


class _Fit:
    """The training state of one fit: phases, epochs, steps, checkpoints."""

    def __init__(
        self,
        net: ContextNet,
        data: _Positions,
        config: ContextFitConfig,
        path: str | Path | None,
        log: Callable[[str], None] | None,
    ) -> None:
        self.net, self.data, self.config = net, data, config
        self.path, self.log = path, log
        self.steps = data.count // config.batch_size
        self.state = _checkpoint(path, config) or {
            "format": _FORMAT,
            "config": asdict(config),
            "phase": 0,
            "epoch": 0,
            "step": 0,
            "history": [],
        }
        if self.state["phase"] == 1 or config.epochs == 0:
            net.quantize()
        if "net" in self.state:
            net.exponents = self.state["net"]["exponents"]
            net.load_state_dict(self.state["net"])

    def run(self, held: _Positions | None) -> None:
        for phase in range(self.state["phase"], 2):
            self._phase(phase, held)
            self.state.update(phase=phase + 1, epoch=0, step=0, optimizer=None)

    def _phase(self, phase: int, held: _Positions | None) -> None:
        config, net, state = self.config, self.net, self.state
        epochs, lr = (
            (config.epochs, config.lr)
            if phase == 0
            else (config.quantized_epochs, config.quantized_lr)
        )
        if phase == 1 and not net.quantized:
            net.quantize()
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        total = max(40, epochs * self.steps)  # short fits: a truncated schedule
        self.schedule = (
            torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, lr, total_steps=total, pct_start=0.05
            )
            if phase == 0
            else torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total)
        )
        if state.get("optimizer") is not None and state["phase"] == phase:
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["scheduler"])
        first = state["epoch"] if state["phase"] == phase else 0
        for epoch in range(first, epochs):
            resume = (state["phase"], state["epoch"]) == (phase, epoch)
            self._epoch(phase, epoch, state["step"] if resume else 0)
            line = {"phase": phase, "epoch": epoch}
            if held is not None:
                line["holdout_bits"] = _net_bits(net, held)
            state["history"].append(line)
            self._save(phase, epoch + 1, 0)
            if self.log is not None:
                kind = "float" if phase == 0 else "quantised"
                self.log(f"{kind} epoch {epoch + 1}/{epochs}: {line}")

    def _epoch(self, phase: int, epoch: int, start: int) -> None:
        config, steps = self.config, self.steps
        seed = config.seed * 1_000_003 + phase * 1009 + epoch
        order = torch.randperm(
            self.data.count, generator=torch.Generator().manual_seed(seed)
        )
        self.net.train()
        running, since, clock = 0.0, 0, time.monotonic()
        for step in range(start, steps):
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            loss = self.net.loss(*self.data.batch(index))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            running, since = running + loss.item(), since + 1
            if (step + 1) % max(1, steps // 20) and step + 1 < steps:
                continue
            self._save(phase, epoch, step + 1)
            if self.log is not None:
                self.log(
                    f"  phase {phase} epoch {epoch + 1} step {step + 1}/{steps}: "
                    f"{running / since / math.log(2):.3f} bits/code "
                    f"({time.monotonic() - clock:.0f} s)"
                )
            running, since = 0.0, 0

    def _save(self, phase: int, epoch: int, step: int) -> None:
        if self.path is None:
            return
        self.state.update(
            phase=phase,
            epoch=epoch,
            step=step,
            net=self.net.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.schedule.state_dict(),
        )
        atomic_save(self.state, self.path)


@torch.no_grad()
def _net_bits(net: ContextNet, data: _Positions, chunk: int = 1 << 16) -> float:
    net.eval()
    total = 0.0
    for i in range(0, data.count, chunk):
        index = torch.arange(i, min(i + chunk, data.count))
        total += float(net.loss(*data.batch(index))) * len(index)
    net.train()
    return total / data.count / math.log(2)


def model_bits(model: ContextModel, maps: Tensor) -> float:
    """Exact bits per code of ``maps`` (N, h, w) under the integer model."""
    n, h, w = maps.shape
    codes = maps.reshape(-1).cpu().numpy().astype(np.int64)
    return ContextCoder(model).bits(codes, [(h, w)] * n) / codes.size
