"""The training loop: greedy, layer by layer (paper Algorithm 2, Appendix C).

Each layer has its own RAdam optimiser over that layer's parameters only, a
flat-then-cosine learning rate, gradient clipping, a linearly annealed Gumbel
temperature, code resetting during the first 75 % of its steps, and normalisation
statistics accumulated while it trains (frozen afterwards, as the whole stack
below it). A run's options are :class:`~.settings.TrainSettings`; its
checkpoints :mod:`.resume`; its ranks, device and Ctrl-C :mod:`.distributed`;
its data :mod:`.data`; its logs :mod:`.monitor`.
"""

from __future__ import annotations

import time

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from torch import Tensor

from compressai_hqa.models import HQA, HQALayer

from .data import LoaderBatches, TensorBatches, load_training_data
from .distributed import (
    Ranks,
    StopRequest,
    configure_backends,
    init_distributed,
    select_device,
)
from .monitor import Monitor
from .resume import LayerState, set_rng_state, start_of_run
from .schedules import FlatCosineLR, gumbel_temperature
from .settings import TrainSettings

__all__ = ["Run", "train", "training_step"]


@dataclass
class Run:
    """What the layers of one run share (built by :func:`train`)."""

    settings: TrainSettings
    model: HQA
    device: torch.device
    ranks: Ranks
    data: TensorBatches | LoaderBatches
    eval_images: Tensor
    monitor: Monitor
    stop: StopRequest


def train(settings: TrainSettings) -> HQA:
    """Trains layers ``start_layer..layers`` greedily; returns the trained stack.

    Raises:
        CheckpointError: a checkpoint is missing, corrupt or from another run.
        FileNotFoundError, ValueError: bad data roots or images.
        SystemExit: code 130 after Ctrl-C (a checkpoint was written first).
    """
    ranks = init_distributed()
    device = select_device(settings.device, ranks)
    configure_backends(settings.deterministic, device)
    start = start_of_run(settings)
    model = start.model.to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    data, eval_images = load_training_data(settings, device, ranks)
    output = Path(settings.output)
    if ranks.main:
        output.mkdir(parents=True, exist_ok=True)
    monitor = Monitor(
        output,
        enabled=ranks.main,
        progress=settings.progress,
        tensorboard=settings.tensorboard,
        resume_at=start.resumed_at,
    )
    torch.manual_seed(settings.seed + ranks.rank)
    if start.checkpoint is not None:
        set_rng_state(start.checkpoint["rng"], device)
    try:
        with StopRequest(ranks) as stop:
            run = Run(settings, model, device, ranks, data, eval_images, monitor, stop)
            checkpoint = start.checkpoint
            for layer in range(start.layer, settings.num_layers + 1):
                _train_layer(run, layer, checkpoint)
                checkpoint = None
    finally:
        monitor.close()
        if dist.is_initialized():
            dist.barrier()
    return model


def _train_layer(run: Run, layer: int, checkpoint: dict[str, Any] | None) -> None:
    """Trains ``layer`` to its last step, from ``checkpoint`` if given."""
    settings, recipe = run.settings, run.settings.recipe
    steps, batch = settings.steps_of(layer), settings.batch_of(layer)
    state, module, autocast = _prepare_layer(run, layer, checkpoint)
    stack, optimizer, top = state.stack, state.optimizer, state.stack.top
    device = top.codebook.device
    reset_until = int(recipe.reset_fraction * steps)
    running = torch.zeros(5, device=device)
    since_log, t_log = 0, time.perf_counter()

    def save(done: bool = False) -> None:
        if run.ranks.main:
            state.save(settings, device, run.monitor.elapsed(), done)

    bar = run.monitor.progress(
        layer, settings.num_layers, steps, state.step, state.elapsed_s
    )
    batches: Iterator[Tensor] = run.data.batches(layer, state.step, steps)
    for step in range(state.step, steps):
        top.set_temperature(
            gumbel_temperature(step, steps, recipe.temp_start, recipe.temp_end)
        )
        top.set_code_reset(step < reset_until)
        x = next(batches)
        if settings.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        running += training_step(
            stack, module, optimizer, x, recipe.grad_clip, autocast
        )
        state.scheduler.step()
        state.step = step + 1
        since_log += 1
        bar.update(1)
        last = state.step == steps
        at_log = state.step % settings.log_every == 0 or last
        if at_log:
            now = time.perf_counter()
            _log(run, state, running / since_log, since_log * batch / (now - t_log))
            running.zero_()
            since_log, t_log = 0, now
        if run.stop.now(at_log):
            save()
            run.monitor.message(
                f"interrupted: checkpoint saved at layer {layer} step {state.step}"
            )
            raise SystemExit(130)
        if state.step % settings.checkpoint_every == 0 and not last:
            save()
    bar.close()
    stack.eval()
    mse = _evaluate_mse(stack, run.eval_images, batch)
    run.monitor.layer_done(
        layer, steps, mse, len(run.eval_images), stack, run.eval_images[:16]
    )
    save(done=True)


def _prepare_layer(
    run: Run, layer: int, checkpoint: dict[str, Any] | None
) -> tuple[LayerState, torch.nn.Module, Any]:
    """The training state of ``layer`` (restored from ``checkpoint`` if given),
    the module the steps run (wrapped for DDP, compiled if asked) and the
    autocast context of its convolutions."""
    settings, recipe = run.settings, run.settings.recipe
    stack = run.model.truncate(layer).train()
    top = stack.top
    # the one way the recipe reaches the model (the layers below are frozen)
    top.configure_training(recipe.training(layer - 1))
    optimizer = torch.optim.RAdam(top.parameters(), lr=recipe.layers[layer - 1].lr)
    scheduler = FlatCosineLR(
        optimizer, settings.steps_of(layer), recipe.lr_flat_fraction,
        recipe.lr_final_ratio,
    )  # fmt: skip
    state = LayerState(layer, stack, optimizer, scheduler)
    if checkpoint is not None:
        state.restore(checkpoint)
    module = run.ranks.wrap(top)
    if settings.compile:
        torch._dynamo.reset()  # the previous layer's graphs are not needed any more
        module = torch.compile(module)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if settings.amp and top.codebook.device.type == "cuda"
        else nullcontext()
    )
    return state, module, autocast


def _log(run: Run, state: LayerState, means: Tensor, images_per_s: float) -> None:
    """One log row: the losses averaged since the last row (``means``)."""
    loss, recon, kl, commit, perplexity = means.tolist()
    top = state.stack.top
    run.monitor.log(
        layer=state.layer,
        step=state.step,
        loss=loss,
        recon=recon,
        kl=kl,
        commit=commit,
        perplexity=perplexity,
        codes_used=top.codes_used(),
        temperature=top.temperature,
        lr=state.optimizer.param_groups[0]["lr"],
        images_per_s=images_per_s,
    )


def training_step(
    stack: HQA,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    grad_clip: float,
    autocast: Any = None,
) -> Tensor:
    """One optimisation step of the stack's top layer on images ``x``.

    Args:
        stack: the stack in training mode (only its top layer trains).
        module: the top layer, possibly wrapped (DDP, ``torch.compile``).
        optimizer: the top layer's optimiser.
        x: a batch of images.
        grad_clip: gradient-norm clipping threshold.
        autocast: context manager for the layer's forward (e.g. bf16 autocast).

    Returns:
        ``[loss, recon, kl, commit, perplexity]`` on the device, detached, with no
        host synchronisation.
    """
    top = stack.top
    target, codes = stack.training_inputs(x)
    with autocast or nullcontext():
        out = module(target) if codes is None else module(target, codes)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    _clear_moments_of_reset_codes(optimizer, top)
    torch.nn.utils.clip_grad_norm_(top.parameters(), grad_clip)
    optimizer.step()
    terms = [out.loss, out.recon, out.kl, out.commit, out.perplexity]
    return torch.stack(terms).detach().float()


def _clear_moments_of_reset_codes(
    optimizer: torch.optim.Optimizer, layer: HQALayer
) -> None:
    """Zeroes the optimiser moments of the codes just reset (device-side)."""
    state = optimizer.state.get(layer.codebook)
    if not state or layer.reset_mask is None:
        return
    keep = (~layer.reset_mask).to(layer.codebook.dtype).unsqueeze(1)
    for key in ("exp_avg", "exp_avg_sq"):
        if key in state:
            state[key].mul_(keep)


@torch.no_grad()
def _evaluate_mse(stack: HQA, images: Tensor, batch_size: int) -> float:
    """MSE of the full-stack reconstruction (argmin codes, deterministic decode)."""
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        x_hat = stack.decode(stack.quantize(x), size=x.shape[-2:])
        total += (x_hat.float() - x.float()).square().sum().double()
    return float(total / images.numel())
