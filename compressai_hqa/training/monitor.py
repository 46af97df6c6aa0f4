"""What a training run shows and writes: progress bars, CSV/TensorBoard logs, figures.

Only rank 0 writes. ``train_log.csv`` has one row per log interval,
``layer_metrics.csv`` one row per finished layer (test-set MSE of the full-stack
reconstruction), ``recon_layer<l>.png`` originals (top row) over reconstructions.
A resumed run drops the log rows written after its checkpoint.
"""

from __future__ import annotations

import csv
import sys
import time

from pathlib import Path
from typing import Any

import torch

from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["Monitor"]

LOG_FIELDS = (
    "layer",
    "step",
    "loss",
    "recon",
    "kl",
    "commit",
    "perplexity",
    "codes_used",
    "temperature",
    "lr",
    "images_per_s",
)
LAYER_FIELDS = ("layer", "steps", "eval_mse", "eval_images", "wall_s")


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class Monitor:
    """Logging sink of the trainer.

    Args:
        output: the run's folder.
        enabled: whether this process writes (rank 0).
        progress: show tqdm bars.
        tensorboard: also write TensorBoard events when tensorboard is installed.
        resume_at: (layer, step) of the checkpoint a resumed run starts from; log
            rows after it are dropped.
    """

    def __init__(
        self,
        output: Path,
        enabled: bool = True,
        progress: bool = True,
        tensorboard: bool = True,
        resume_at: tuple[int, int] | None = None,
    ) -> None:
        self.output = Path(output)
        self.enabled = enabled
        self.show_progress = progress and enabled
        self._bar: Any = _NoBar()
        self._started: float | None = None
        self._writer: Any = None
        if not enabled:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        self._log = self._open(self.output / "train_log.csv", LOG_FIELDS, resume_at)
        self._layers = self._open(
            self.output / "layer_metrics.csv", LAYER_FIELDS, resume_at
        )
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                self._writer = SummaryWriter(str(self.output / "tensorboard"))

    @staticmethod
    def _open(
        path: Path, fields: tuple[str, ...], resume_at: tuple[int, int] | None
    ) -> Any:
        rows: list[dict[str, str]] = []
        if resume_at is not None and path.exists():
            with path.open(newline="") as f:
                rows = [
                    r
                    for r in csv.DictReader(f)
                    if (int(r["layer"]), int(r.get("step") or r["steps"])) <= resume_at
                ]
        f = path.open("w", newline="")
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        return f, writer

    def progress(
        self, layer: int, layers: int, steps: int, start: int, elapsed: float = 0.0
    ) -> Any:
        """A progress bar for one layer resumed at ``start`` after ``elapsed`` s."""
        self._started = time.perf_counter() - elapsed
        if not self.show_progress:
            self._bar = _NoBar()
        else:
            self._bar = tqdm(
                total=steps,
                initial=start,
                desc=f"layer {layer}/{layers}",
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        return self._bar

    def elapsed(self) -> float:
        """Wall time (s) of the current layer, including the runs it resumed."""
        return 0.0 if self._started is None else time.perf_counter() - self._started

    def log(self, **row: Any) -> None:
        if not self.enabled:
            return
        self._bar.set_postfix(
            loss=f"{row['loss']:.4g}",
            kl=f"{row['kl']:.3g}",
            T=f"{row['temperature']:.3g}",
            lr=f"{row['lr']:.2g}",
            ppl=f"{row['perplexity']:.1f}",
            used=row["codes_used"],
            img_s=f"{row['images_per_s']:.0f}",
            refresh=False,
        )
        f, writer = self._log
        writer.writerow(row)
        f.flush()
        if self._writer is not None:
            step = row["step"]
            for key, value in row.items():
                if key not in ("layer", "step"):
                    self._writer.add_scalar(f"layer{row['layer']}/{key}", value, step)

    def layer_done(
        self, layer: int, steps: int, mse: float, n: int, stack: Any, images: Tensor
    ) -> None:
        if not self.enabled:
            return
        from torchvision.utils import save_image

        wall = self.elapsed()
        f, writer = self._layers
        writer.writerow(
            {
                "layer": layer,
                "steps": steps,
                "eval_mse": mse,
                "eval_images": n,
                "wall_s": wall,
            }
        )
        f.flush()
        with torch.no_grad():
            rec = stack.decode(stack.quantize(images), size=images.shape[-2:])
        grid = torch.cat([images, rec.to(images.dtype)]).float().cpu()
        save_image(
            grid, self.output / f"recon_layer{layer}.png", nrow=len(images), padding=2
        )
        self.message(f"layer {layer}: {steps} steps, eval MSE {mse:.5f} on {n} images")
        if self._writer is not None:
            self._writer.add_scalar("eval_mse", mse, layer)

    def message(self, text: str) -> None:
        if self.enabled:
            tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        if not self.enabled:
            return
        for f, _ in (self._log, self._layers):
            f.close()
        if self._writer is not None:
            self._writer.close()
