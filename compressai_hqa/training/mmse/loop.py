"""Fitting one layer's MMSE decoder: the resumable training loop, the table of
conditional means, and the export of the chosen decoders to one weights file.

A run folder ``OUTPUT/layer<l>-<kind>/`` holds ``checkpoint.pth`` (written
atomically every ``checkpoint_every`` steps, at the end and on Ctrl-C; plain
values and tensors, loads with ``weights_only=True``), ``train_log.csv`` (one row
per ``log_every`` steps, with the held-out MSE every ``eval_every`` steps and at
step 0, the stack's own decoding path before any training), ``model.pth`` (the
trained :class:`~compressai_hqa.models.mmse.MMSEDecoders` state dict) and
``metrics.json``. The batch of step ``s`` depends only on the seed, the layer
and ``s``, so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import sys
import time

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor
from tqdm.auto import tqdm

from compressai_hqa.datasets import load_mnist
from compressai_hqa.files import atomic_save, atomic_write, load_torch_file
from compressai_hqa.models import HQA
from compressai_hqa.models.mmse import CodeTable, MMSEDecoders
from compressai_hqa.zoo import hqa

from ..data import epoch_permutation
from ..distributed import Ranks, StopRequest
from ..schedules import FlatCosineLR
from .codes import load_codes
from .evaluate import decoder_mse
from .settings import MMSESettings

__all__ = ["FORMAT", "LOG_FIELDS", "export", "fit_table", "load_stack", "train_layer"]

#: ``"format"`` of a training checkpoint.
FORMAT = "compressai_hqa.mmse.train/1"
LOG_FIELDS = ("layer", "kind", "step", "loss", "heldout_mse", "lr", "images_per_s")


def load_stack(weights: str | None = None) -> HQA:
    """The frozen stack: the shipped MNIST one, or ``weights``, in eval mode."""
    model = hqa(pretrained=True) if weights is None else hqa(weights=weights)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def _split(settings: MMSESettings, stack: HQA) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Training images and codes of the layer, then the held-out ones."""
    size = stack.config.image_size
    images = load_mnist(settings.data_root, train=True, size=size).images
    if settings.holdout >= len(images):
        raise ValueError(f"--holdout {settings.holdout} leaves no training images")
    codes = load_codes(stack, images, settings.codes_path)[settings.layer].int()
    cut = len(images) - settings.holdout
    return images[:cut], codes[:cut], images[cut:], codes[cut:]


@torch.no_grad()
def fit_table(stack: HQA, layer: int, images: Tensor, codes: Tensor) -> CodeTable:
    """The table of the mean training patch of each code of ``layer``.

    A code no training image has keeps the stack's argmin decoding of it.

    Args:
        stack: the stack (at least ``layer`` layers).
        layer: the layer (1-based).
        images: (N, C, H, W) training images.
        codes: (N, h, w) their code maps at ``layer``.
    """
    config = stack.config
    k, f = config.layers[layer - 1].codebook_size, config.downsampling(layer)
    table = CodeTable(k, config.in_channels, f)
    n, c = len(images), config.in_channels
    h, w = codes.shape[1:]
    patches = images[..., : h * f, : w * f].reshape(n, c, h, f, w, f)
    patches = patches.permute(0, 2, 4, 1, 3, 5).reshape(-1, c, f, f).double()
    flat = codes.reshape(-1).long()
    sums = torch.zeros(k, c, f, f, dtype=torch.float64).index_add_(0, flat, patches)
    counts = torch.bincount(flat, minlength=k)
    truncated = stack.truncate(layer)
    argmin = truncated.decode(truncated.code_grids(f, f), size=(f, f)).double().cpu()
    seen = (counts > 0).view(-1, 1, 1, 1)
    means = sums / counts.clamp_min(1).view(-1, 1, 1, 1)
    table.means.copy_(torch.where(seen, means, argmin).float())
    return table


def _batch_indices(n: int, settings: MMSESettings, step: int) -> Tensor:
    per_epoch = n // settings.batch_size
    epoch, i = divmod(step, per_epoch)
    perm = epoch_permutation(n, settings.seed, settings.layer, epoch)
    return perm[i * settings.batch_size : (i + 1) * settings.batch_size]


class _Log:
    """``train_log.csv``; a resumed run drops the rows after its checkpoint."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        rows: list[dict[str, str]] = []
        if resume_step is not None and path.exists():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self.rows = rows  # those kept from the resumed run
        self._file = path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=LOG_FIELDS)
        self._writer.writeheader()
        self._writer.writerows(rows)
        self._file.flush()

    def write(self, **row: Any) -> None:
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _start(settings: MMSESettings, model: MMSEDecoders, opt: Any, sched: Any) -> Any:
    """(step, elapsed_s, losses since the last log row) of the checkpoint
    resumed, or (0, 0.0, []) for a new run."""
    path = settings.run_dir / "checkpoint.pth"
    if not settings.resume:
        if path.exists():
            raise FileExistsError(
                f"{path} exists: pass --resume to continue it, or choose another "
                "--output"
            )
        return 0, 0.0, []
    if not path.exists():
        return 0, 0.0, []
    ckpt = load_torch_file(path)
    if ckpt.get("format") != FORMAT or ckpt.get("run") != settings.fingerprint():
        raise ValueError(
            f"{path} is another run's checkpoint: resume with the same options"
        )
    model.load_state_dict(ckpt["state_dict"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    return int(ckpt["step"]), float(ckpt["elapsed_s"]), list(ckpt["losses"])


def _save(
    settings: MMSESettings,
    model: nn.Module,
    opt: Any,
    sched: Any,
    step: int,
    elapsed: float,
    losses: list[float],
) -> None:
    checkpoint = {
        "losses": losses,  # of the steps since the last log row
        "format": FORMAT,
        "run": settings.fingerprint(),
        "step": step,
        "state_dict": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "elapsed_s": elapsed,
    }
    atomic_save(checkpoint, settings.run_dir / "checkpoint.pth")


def _log_row(
    settings: MMSESettings,
    log: _Log,
    decoder: nn.Module,
    held: Tensor,
    held_codes: Tensor,
    step: int,
    losses: list[float],
    lr: float,
    seconds: float,
) -> None:
    """One row of ``train_log.csv``, with the held-out MSE at evaluation steps."""
    evaluate = step % settings.eval_every == 0 or step == settings.steps
    log.write(
        layer=settings.layer,
        kind=settings.spec.kind,
        step=step,
        loss=sum(losses) / len(losses),
        heldout_mse=decoder_mse(decoder, held, held_codes) if evaluate else "",
        lr=lr,
        images_per_s=len(losses) * settings.batch_size / seconds,
    )


def train_layer(settings: MMSESettings) -> dict[str, Any]:
    """Fits the MMSE decoder of ``settings.layer`` and writes its run folder.

    Returns:
        The metrics written to ``metrics.json``: the held-out MSE of the
        decoder, of argmin decoding and (path) of the untrained path.

    Raises:
        FileExistsError: the run folder has a checkpoint and ``resume`` is off.
        ValueError: a checkpoint of other options.
    """
    torch.manual_seed(settings.seed)
    torch.set_flush_denormal(True)  # subnormal floats are very slow on x86 CPUs
    stack = load_stack(settings.weights)
    if settings.layer > stack.num_layers:
        raise ValueError(f"the stack has {stack.num_layers} layers")
    images, codes, held, held_codes = _split(settings, stack)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    truncated = stack.truncate(settings.layer)
    argmin = decoder_mse(lambda c: truncated.decode(c), held, held_codes)
    if settings.spec.kind == "table":
        model = MMSEDecoders(stack, {settings.layer: settings.spec})
        model.decoders[str(settings.layer)] = fit_table(
            stack, settings.layer, images, codes
        )
        result = {"steps": 0, "wall_s": 0.0}
    else:
        model, result = _optimise(settings, stack, images, codes, held, held_codes)
    mse = decoder_mse(model.layer(settings.layer), held, held_codes)
    atomic_save(model.state_dict(), settings.run_dir / "model.pth")
    metrics = {
        "layer": settings.layer,
        **settings.fingerprint(),
        **result,
        "heldout_images": len(held),
        "heldout_mse": mse,
        "heldout_mse_argmin": argmin,
    }
    text = json.dumps(metrics, indent=2) + "\n"
    atomic_write(settings.run_dir / "metrics.json", text.encode())
    return metrics


def _optimise(
    settings: MMSESettings,
    stack: HQA,
    images: Tensor,
    codes: Tensor,
    held: Tensor,
    held_codes: Tensor,
) -> tuple[MMSEDecoders, dict[str, Any]]:
    """The training loop of a ``"path"`` or ``"net"`` decoder."""
    model = MMSEDecoders(stack, {settings.layer: settings.spec})
    decoder = model.layer(settings.layer)
    opt = torch.optim.Adam(decoder.parameters(), lr=settings.lr)
    sched = FlatCosineLR(opt, settings.steps, 0.0, settings.final_lr_ratio)
    step, elapsed, losses = _start(settings, model, opt, sched)
    log = _Log(settings.run_dir / "train_log.csv", step or None)
    first = {}
    if log.rows:  # resumed: the untrained decoder's MSE is in the log
        first["heldout_mse_init"] = float(log.rows[0]["heldout_mse"])
    if step == 0:
        first["heldout_mse_init"] = decoder_mse(decoder, held, held_codes)
        log.write(
            layer=settings.layer,
            kind=settings.spec.kind,
            step=0,
            heldout_mse=first["heldout_mse_init"],
        )
    bar = tqdm(
        total=settings.steps,
        initial=step,
        desc=f"mmse layer {settings.layer}",
        unit="step",
        disable=not settings.progress,
        file=sys.stderr,
    )
    started, tick = time.perf_counter() - elapsed, time.perf_counter()
    try:
        with StopRequest(Ranks()) as stop:
            while step < settings.steps:
                idx = _batch_indices(len(images), settings, step)
                decoder.train()
                loss = F.mse_loss(decoder(codes[idx]), images[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                losses.append(loss.item())
                bar.update()
                if step % settings.log_every == 0 or step == settings.steps:
                    seconds = time.perf_counter() - tick
                    _log_row(
                        settings,
                        log,
                        decoder,
                        held,
                        held_codes,
                        step,
                        losses,
                        opt.param_groups[0]["lr"],
                        seconds,
                    )
                    bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
                    tick, losses = time.perf_counter(), []
                last = step == settings.steps
                if stop.now(True) or last or step % settings.checkpoint_every == 0:
                    elapsed = time.perf_counter() - started
                    _save(settings, model, opt, sched, step, elapsed, losses)
                if stop.now(True) and not last:
                    tqdm.write(f"interrupted: saved at step {step}", file=sys.stderr)
                    raise KeyboardInterrupt
    finally:
        bar.close()
        log.close()
    return model.eval(), {
        "steps": step,
        "wall_s": time.perf_counter() - started,
        **first,
    }


def export(
    stack: HQA,
    sources: Sequence[str | Path] | Mapping[int, str | Path],
    path: str | Path,
    half: bool = True,
) -> MMSEDecoders:
    """Writes the MMSE decoders of several layers to one state dict file.

    Args:
        stack: the stack they were trained for (checked).
        sources: ``model.pth`` files of runs (one layer each, or more).
        path: the file to write.
        half: store floating tensors as float16.

    Returns:
        The decoders, loaded back from the written file.
    """
    files = sources.values() if isinstance(sources, Mapping) else sources
    specs, tensors = {}, {}
    for source in files:
        part = MMSEDecoders.from_state_dict(stack, load_torch_file(source))
        specs.update(part.specs)
        tensors.update(
            {k: v for k, v in part.state_dict().items() if k != "_extra_state"}
        )
    model = MMSEDecoders(stack, specs)
    model.load_state_dict(tensors, strict=False)
    state = model.state_dict()
    if half:
        state = {
            k: v.half() if isinstance(v, Tensor) and v.is_floating_point() else v
            for k, v in state.items()
        }
    atomic_save(state, path)
    return MMSEDecoders.from_state_dict(stack, load_torch_file(path))
