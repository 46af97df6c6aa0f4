"""Greedy layer-by-layer training of an HQA stack (paper Algorithm 2, Appendix C).

Each layer has its own RAdam optimiser over that layer's parameters only, a
flat-then-cosine learning rate, gradient clipping, a linearly annealed Gumbel
temperature, code resetting during the first 75 % of its steps, and normalisation
statistics accumulated while it trains (frozen afterwards, as the whole stack
below it). Checkpoints are atomic and hold plain values only, so a run killed at
any moment resumes from the last one, bit-identically with ``deterministic``.
"""

from __future__ import annotations

import os
import signal
import time

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from torch import Tensor

from compressai_hqa.configs import HQAConfig
from compressai_hqa.datasets import (
    RandomCropFolder,
    TensorImages,
    load_face_folder,
    load_mnist,
)
from compressai_hqa.models import HQA

from .checkpoint import FORMAT, CheckpointError, atomic_save, load_checkpoint
from .data import LoaderBatches, TensorBatches
from .monitor import Monitor
from .schedules import FlatCosineLR, gumbel_temperature

__all__ = ["DATASETS", "TrainSettings", "train", "training_step"]

#: Dataset kinds: ``mnist`` (root holds MNIST/raw), ``faces`` (aligned faces,
#: center crop + resize, in memory), ``folder`` (random crops via a DataLoader).
DATASETS = ("mnist", "faces", "folder")
_DEFAULT_DATASET = {1: "mnist", 3: "faces"}
CHECKPOINT = "checkpoint.pth"
MODEL = "model.pth"


@dataclass(frozen=True)
class TrainSettings:
    """One training run (the command line of ``examples/train_hqa.py``).

    Args:
        config: the stack and its recipe (paper Table 9 or 10).
        data_root: MNIST root (holding ``MNIST/raw``) or an image folder.
        output: folder for checkpoints, logs and figures.
        dataset: one of :data:`DATASETS`; default ``mnist`` for 1-channel
            configs and ``faces`` for 3-channel ones.
        layers: train up to this layer (default: all layers of the config).
        start_layer: first layer to train; > 1 needs ``init``.
        init: a checkpoint or state dict holding layers ``1..start_layer-1``.
        steps: steps per layer (default: the config's).
        batch_size: global batch size (default: the config's).
        resume: continue from ``output/checkpoint.pth``.
        deterministic: deterministic algorithms (bit-identical resumes).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
        seed: seed of the data order, initialisation and noise.
        checkpoint_every: steps between checkpoints (and at each layer's end).
        log_every: steps between log lines (the only host synchronisations).
        compile: wrap the trained layer in ``torch.compile``.
        channels_last: channels-last memory format for convolutions.
        amp: bf16 autocast for the convolutions on CUDA (distances, softmax and
            losses stay in fp32).
        eval_root: images for the end-of-layer MSE (default: the MNIST test
            split for ``mnist``, else the first ``eval_images`` training images).
        eval_images: how many images the end-of-layer MSE uses.
        holdout: keep the last ``holdout`` training images out of training and
            measure the end-of-layer MSE on them (a validation split, so that
            choices are not made on the test set).
        num_workers: DataLoader workers (``folder`` dataset).
        progress: show tqdm progress bars.
        tensorboard: also log to TensorBoard when it is installed.
    """

    config: HQAConfig
    data_root: Path
    output: Path
    dataset: str | None = None
    layers: int | None = None
    start_layer: int = 1
    init: Path | None = None
    steps: int | None = None
    batch_size: int | None = None
    resume: bool = False
    deterministic: bool = False
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    compile: bool = False
    channels_last: bool = False
    amp: bool = True
    eval_root: Path | None = None
    eval_images: int = 10_000
    holdout: int = 0
    num_workers: int = 2
    progress: bool = True
    tensorboard: bool = True

    @property
    def num_layers(self) -> int:
        return self.config.num_layers if self.layers is None else self.layers

    @property
    def dataset_kind(self) -> str:
        return self.dataset or _DEFAULT_DATASET.get(self.config.in_channels, "folder")

    def steps_of(self, layer: int) -> int:
        return self.steps or self.config.layers[layer - 1].steps

    def batch_of(self, layer: int) -> int:
        return self.batch_size or self.config.layers[layer - 1].batch_size

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint."""
        n = self.num_layers
        return {
            "config": self.config.to_dict(),
            "dataset": self.dataset_kind,
            "seed": self.seed,
            "steps": [self.steps_of(i) for i in range(1, n + 1)],
            "batch_size": [self.batch_of(i) for i in range(1, n + 1)],
            "holdout": self.holdout,
        }


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


class _Stop:
    """Ctrl-C handling: the first SIGINT asks for a checkpoint and a clean exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Stop:
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


def train(settings: TrainSettings) -> HQA:
    """Trains layers ``start_layer..layers`` greedily; returns the trained stack.

    Raises:
        CheckpointError: a checkpoint is missing, corrupt or from another run.
        FileNotFoundError, ValueError: bad data roots or images.
        SystemExit: code 130 after Ctrl-C (a checkpoint was written first).
    """
    d = _init_distributed()
    device = _device(settings.device, d)
    _configure(settings, device)
    output = Path(settings.output)
    ckpt_path = output / CHECKPOINT
    model, start_layer, resume_state, resume_at = _build_model(settings, ckpt_path)
    model.to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    data, eval_images = _load_data(settings, device, d)
    if d.main:
        output.mkdir(parents=True, exist_ok=True)
    monitor = Monitor(
        output,
        enabled=d.main,
        progress=settings.progress,
        tensorboard=settings.tensorboard,
        resume_at=resume_at,
    )
    torch.manual_seed(settings.seed + d.rank)
    if resume_state is not None:
        _set_rng(resume_state["rng"], device)
    try:
        with _Stop() as stop:
            for layer in range(start_layer, settings.num_layers + 1):
                state = (
                    resume_state
                    if resume_state and resume_state["layer"] == layer
                    else None
                )
                _train_layer(
                    model, layer, settings, data, eval_images, monitor, stop, d, state
                )
                resume_state = None
    finally:
        monitor.close()
        if dist.is_initialized():
            dist.barrier()
    return model


# --------------------------------------------------------------------- layer loop
def _train_layer(
    model: HQA,
    layer: int,
    settings: TrainSettings,
    data: TensorBatches | LoaderBatches,
    eval_images: Tensor,
    monitor: Monitor,
    stop: _Stop,
    d: _Dist,
    state: dict[str, Any] | None,
) -> None:
    config = settings.config
    steps, batch = settings.steps_of(layer), settings.batch_of(layer)
    stack = model.truncate(layer).train()
    top = stack.top
    optimizer = torch.optim.RAdam(top.parameters(), lr=config.lr)
    scheduler = FlatCosineLR(
        optimizer, steps, config.lr_flat_fraction, config.lr_final_ratio
    )
    start, elapsed = 0, 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["step"])
        elapsed = float(state.get("elapsed_s", 0.0))
    module: torch.nn.Module = top
    if d.world > 1:
        ids = [d.local_rank] if top.quantizer.codebook.is_cuda else None
        module = torch.nn.parallel.DistributedDataParallel(
            top, device_ids=ids, broadcast_buffers=False
        )
    if settings.compile:
        torch._dynamo.reset()  # the previous layer's graphs are not needed any more
        module = torch.compile(module)
    device = top.quantizer.codebook.device
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if settings.amp and device.type == "cuda"
        else nullcontext()
    )
    reset_until = int(config.reset_fraction * steps)
    running = torch.zeros(5, device=device)
    since_log, t_log = 0, time.perf_counter()

    def save(step: int, done: bool) -> None:
        if d.main:
            _save(
                settings, stack, layer, step, done, optimizer, scheduler, device,
                monitor.elapsed(),
            )  # fmt: skip

    bar = monitor.progress(layer, settings.num_layers, steps, start, elapsed)
    batches: Iterator[Tensor] = data.batches(layer, start, steps)
    for step in range(start, steps):
        top.quantizer.temperature.fill_(
            gumbel_temperature(step, steps, config.temp_start, config.temp_end)
        )
        top.quantizer.code_reset = step < reset_until
        x = next(batches)
        if settings.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        running += training_step(
            stack, module, optimizer, x, config.grad_clip, autocast
        )
        scheduler.step()
        since_log += 1
        bar.update(1)
        last = step + 1 == steps
        at_log = (step + 1) % settings.log_every == 0 or last
        if at_log:
            now = time.perf_counter()
            loss, recon, kl, commit, perplexity = (running / since_log).tolist()
            monitor.log(
                layer=layer,
                step=step + 1,
                loss=loss,
                recon=recon,
                kl=kl,
                commit=commit,
                perplexity=perplexity,
                codes_used=int((top.quantizer.usage > 0).sum()),
                temperature=float(top.quantizer.temperature),
                lr=optimizer.param_groups[0]["lr"],
                images_per_s=since_log * batch / (now - t_log),
            )
            running.zero_()
            since_log, t_log = 0, now
        if _stop_requested(stop, d, at_log):
            save(step + 1, False)
            monitor.message(
                f"interrupted: checkpoint saved at layer {layer} step {step + 1}"
            )
            raise SystemExit(130)
        if (step + 1) % settings.checkpoint_every == 0 and not last:
            save(step + 1, False)
    bar.close()
    stack.eval()
    mse = _evaluate_mse(stack, eval_images, batch)
    monitor.layer_done(layer, steps, mse, len(eval_images), stack, eval_images[:16])
    save(steps, True)


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
    target = stack.layer_input(x)
    with autocast or nullcontext():
        out = module(target)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    _clear_moments_of_reset_code(optimizer, top.quantizer)
    torch.nn.utils.clip_grad_norm_(top.parameters(), grad_clip)
    optimizer.step()
    terms = [out.loss, out.recon, out.kl, out.commit, out.perplexity]
    return torch.stack(terms).detach().float()


def _clear_moments_of_reset_code(
    optimizer: torch.optim.Optimizer, quantizer: torch.nn.Module
) -> None:
    """Zeroes the optimiser moments of the codes just reset (device-side)."""
    state = optimizer.state.get(quantizer.codebook)
    if not state:
        return
    keep = (~quantizer.reset_mask).to(quantizer.codebook.dtype).unsqueeze(1)
    for key in ("exp_avg", "exp_avg_sq"):
        if key in state:
            state[key].mul_(keep)


def _stop_requested(stop: _Stop, d: _Dist, at_log: bool) -> bool:
    """Whether to stop after this step: at once on one process; under
    ``torch.distributed`` at the next log interval, on every rank together."""
    if d.world == 1:
        return stop.requested
    if not at_log:
        return False
    flag = torch.tensor([float(stop.requested)], device=_collective_device(d))
    dist.all_reduce(flag)
    return bool(flag.item() > 0)


@torch.no_grad()
def _evaluate_mse(stack: HQA, images: Tensor, batch_size: int) -> float:
    """MSE of the full-stack reconstruction (argmin codes, deterministic decode)."""
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size]
        x_hat = stack.decode(stack.quantize(x), size=x.shape[-2:])
        total += (x_hat.float() - x.float()).square().sum().double()
    return float(total / images.numel())


# ------------------------------------------------------------------ checkpoints
def _save(
    settings: TrainSettings,
    stack: HQA,
    layer: int,
    step: int,
    done: bool,
    optimizer: torch.optim.Optimizer,
    scheduler: FlatCosineLR,
    device: torch.device,
    elapsed_s: float,
) -> None:
    checkpoint = {
        "format": FORMAT,
        "state_dict": stack.state_dict(),
        "layer": layer,
        "step": step,
        "layer_done": done,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _get_rng(device),
        "run": settings.fingerprint(),
        "elapsed_s": elapsed_s,  # wall time of this layer's training so far
    }
    output = Path(settings.output)
    atomic_save(checkpoint, output / CHECKPOINT)
    if done:
        atomic_save(stack.state_dict(), output / MODEL)


def _build_model(
    settings: TrainSettings, ckpt_path: Path
) -> tuple[HQA, int, dict[str, Any] | None, tuple[int, int] | None]:
    """The model, the first layer to train, the state to resume within it, and
    the (layer, step) position of the checkpoint resumed from."""
    config, n = settings.config, settings.num_layers
    if not 1 <= n <= config.num_layers:
        raise ValueError(f"--layers must be in [1, {config.num_layers}], got {n}")
    if settings.resume:
        state = load_checkpoint(ckpt_path)
        if state.get("format") != FORMAT:
            raise CheckpointError(f"{ckpt_path} is not a training checkpoint")
        _check_same_run(state["run"], settings.fingerprint(), ckpt_path)
        model = _from_checkpoint(state, config, n, ckpt_path)
        layer, step = int(state["layer"]), int(state["step"])
        if state["layer_done"]:
            return model, layer + 1, None, (layer, step)
        return model, layer, state, (layer, step)
    if ckpt_path.exists():
        raise CheckpointError(
            f"{ckpt_path} exists: pass --resume to continue it, "
            "or choose another --output"
        )
    torch.manual_seed(settings.seed)
    if settings.start_layer == 1:
        if settings.init is not None:
            raise ValueError("--init needs --start-layer > 1")
        return HQA(config, num_layers=n), 1, None, None
    if settings.init is None:
        raise ValueError(
            f"--start-layer {settings.start_layer} needs --init <checkpoint>"
        )
    state = load_checkpoint(settings.init)
    model = _from_checkpoint(state, config, n, settings.init, init=True)
    stored = int(state["state_dict"]["_extra_state"]["num_layers"])
    if stored < settings.start_layer - 1 or not 1 < settings.start_layer <= n:
        raise ValueError(
            f"--start-layer {settings.start_layer} needs layers "
            f"1..{settings.start_layer - 1} in --init (it holds {stored}) "
            f"and must be <= --layers {n}"
        )
    return model, settings.start_layer, None, None


def _from_checkpoint(
    state: dict[str, Any], config: HQAConfig, n: int, path: Path, init: bool = False
) -> HQA:
    """A stack of ``n`` layers of ``config`` holding the checkpoint's layers.

    A resumed run needs the checkpoint's exact config; ``--init`` only needs the
    stored layers' architecture (so layers can be stacked on a trained base).
    """
    weights = state["state_dict"]
    stored = HQAConfig.from_dict(weights["_extra_state"]["config"])
    k = int(weights["_extra_state"]["num_layers"])
    same = stored == config
    if init and not same:
        same = stored.in_channels == config.in_channels and [
            c.architecture() for c in stored.layers[:k]
        ] == [c.architecture() for c in config.layers[:k]]
    if not same:
        raise CheckpointError(
            f"{path} was trained with config {stored.name!r}, which differs from "
            f"--config {config.name!r}"
        )
    if stored == config:
        return HQA.from_state_dict(weights, num_layers=n)
    model = HQA(config, num_layers=n)
    tensors = {key: v for key, v in weights.items() if key != "_extra_state"}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    fresh = tuple(f"layers.{i}." for i in range(k, n))
    if unexpected or [
        m for m in missing if not m.startswith(fresh) and m != "_extra_state"
    ]:
        raise CheckpointError(
            f"{path} does not fit the first {k} layers of {config.name!r}"
        )
    return model


def _check_same_run(
    stored: dict[str, Any], current: dict[str, Any], path: Path
) -> None:
    for key in ("config", "dataset", "seed", "steps", "batch_size", "holdout"):
        if stored.get(key) != current.get(key):
            what = "config" if key == "config" else f"{key} {stored.get(key)!r}"
            raise CheckpointError(
                f"{path} belongs to another run ({what} differs); "
                "resume with the same options or choose another --output"
            )


def _get_rng(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------ environment
def _init_distributed() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Dist()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return _Dist(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    )


def _collective_device(d: _Dist) -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", d.local_rank)
    return torch.device("cpu")


def _device(name: str, d: _Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    return device


def _configure(settings: TrainSettings, device: torch.device) -> None:
    if device.type == "cpu":
        # Tiny posterior probabilities would otherwise be subnormal floats, which
        # are very slow on x86 CPUs; flushing them to zero changes no result
        # that matters (they are < 1e-38).
        torch.set_flush_denormal(True)
    if settings.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def _load_data(
    settings: TrainSettings, device: torch.device, d: _Dist
) -> tuple[TensorBatches | LoaderBatches, Tensor]:
    """The training batches and the images of the end-of-layer MSE."""
    kind, cfg = settings.dataset_kind, settings.config
    if kind not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {kind!r}")
    batch = settings.batch_of(1)
    if any(settings.batch_of(i) != batch for i in range(1, settings.num_layers + 1)):
        raise ValueError("all layers must use the same batch size in one run")
    source: TensorBatches | LoaderBatches
    if kind == "folder":
        if settings.holdout:
            raise ValueError("--holdout needs an in-memory dataset (mnist or faces)")
        folder = RandomCropFolder(
            settings.data_root, cfg.image_size, cfg.in_channels, settings.seed
        )
        evals = _eval_set(settings, lambda: _first_crops(folder, settings.eval_images))
        source = LoaderBatches(
            folder, batch, settings.seed, device, d.rank, d.world, settings.num_workers
        )
        return source, evals.images[: settings.eval_images].to(device)
    if kind == "mnist":
        if cfg.in_channels != 1:
            raise ValueError(
                f"MNIST is grayscale; config {cfg.name!r} has "
                f"{cfg.in_channels} channels"
            )
        images = load_mnist(settings.data_root, train=True, size=cfg.image_size).images

        def default() -> TensorImages:
            return load_mnist(settings.data_root, train=False, size=cfg.image_size)

    else:
        images = load_face_folder(
            settings.data_root, cfg.image_size, cfg.in_channels
        ).images

        def default() -> TensorImages:
            return TensorImages(images)

    if settings.holdout:
        if settings.holdout >= len(images):
            raise ValueError(f"--holdout {settings.holdout} leaves no training images")
        images, held = images[: -settings.holdout], images[-settings.holdout :]

        def default() -> TensorImages:
            return TensorImages(held)

    evals = _eval_set(settings, default)
    source = TensorBatches(images.to(device), batch, settings.seed, d.rank, d.world)
    return source, evals.images[: settings.eval_images].to(device)


def _eval_set(settings: TrainSettings, default: Any) -> TensorImages:
    if settings.eval_root is None:
        return default()
    return load_face_folder(
        settings.eval_root, settings.config.image_size, settings.config.in_channels
    )


def _first_crops(folder: RandomCropFolder, n: int) -> TensorImages:
    return TensorImages(torch.stack([folder[i] for i in range(min(n, len(folder)))]))


def settings_dict(settings: TrainSettings) -> dict[str, Any]:
    """Plain-value form of the settings (for logs)."""
    out = asdict(settings)
    out["config"] = settings.config.name
    return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}
