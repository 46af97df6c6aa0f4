#!/usr/bin/env python3
"""CompressAI's own models retrained on MNIST 32x32: the baselines of the frontier.

Ballé et al. 2018 (``bmshj2018-factorized``:
:class:`~compressai.models.FactorizedPrior`, ``bmshj2018-hyperprior``:
:class:`~compressai.models.ScaleHyperprior`) and Minnen et al. 2018
(``mbt2018-mean``: :class:`~compressai.models.MeanScaleHyperprior`), the
classes from ``compressai.models`` with their first and last convolutions made
one-channel (MNIST is grayscale; nothing else changes). Trained as CompressAI's
``examples/train.py`` trains them: the rate-distortion loss
``lambda * 255^2 * MSE + bpp`` (:class:`compressai.losses.RateDistortionLoss`'s
formula), CompressAI's two optimisers (``net_aux_optimizer``: Adam on the network,
Adam at 1e-3 on the quantiles) with the aux loss stepped every batch and gradient
clipping at 1.0.

Images are zero-padded 32 -> 64 as CompressAI's ``eval_model`` (and this project's
evaluation) pads them, so the hyperpriors have a latent grid their hyper-synthesis
can match; MSE and bits are counted on the digit's 32x32 = 1,024 pixels, so the
bpp of the loss is bits per digit / 1,024 whatever the padding.

Data: the 60,000 MNIST training digits minus the last 5,000 (the same held-out
digits as the HQA trainer's ``--holdout 5000``), which score every checkpoint
(``heldout.csv``: loss, MSE, bits per digit) and choose the widths.

    # 1. the widths (N, M), chosen on the held-out digits at lambda 2.5e-5 (about
    #    16 bits per digit: the extreme rates the comparison is about)
    python benchmarks/compressai_baselines.py widths --model bmshj2018-factorized \\
        --data-root ../shared/data --output ~/runs/compressai
    # 2. every other lambda of the sweep at those widths
    python benchmarks/compressai_baselines.py sweep --model bmshj2018-factorized \\
        --data-root ../shared/data --output ~/runs/compressai
    # collect the logs and final metrics into benchmarks/results/compressai/
    python benchmarks/compressai_baselines.py collect --output ~/runs/compressai

Every run writes ``train_log.csv`` and ``heldout.csv`` and, every
250 steps, ``checkpoint.pth.tar`` (network, optimisers, step; batches and noise
are functions of the step, so a resumed run is the uninterrupted one); rerunning
a command resumes every unfinished run. At the end ``model.pth`` (the
updated network, state dict only, loadable with ``weights_only=True``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch import Tensor

__all__ = ["MODELS", "RunConfig", "build_model", "train"]

#: CompressAI zoo name -> class name in ``compressai.models``.
MODELS = {
    "bmshj2018-factorized": "FactorizedPrior",
    "bmshj2018-hyperprior": "ScaleHyperprior",
    "mbt2018-mean": "MeanScaleHyperprior",
}
#: lambdas of the sweep (factor 5 apart), to span 8 to 2,048 bits per digit.
LAMBDAS = (5e-6, 2.5e-5, 1.25e-4, 6.25e-4, 3.125e-3, 1.5625e-2)
#: candidate widths (N, M) compared on the held-out digits by ``widths`` (the
#: factorized model also ran N=64, M=96: worse than 32 and 16 at 16 bits per digit).
WIDTHS = ((8, 12), (16, 24), (32, 48))
HOLDOUT = 5000
DIGIT_PIXELS = 32 * 32
PAD = 16  # 32 -> 64, centred, as compressai.ops.compute_padding(32, 32, min_div=64)


@dataclass(frozen=True)
class RunConfig:
    """One training run (stored in ``config.json``; a resumed run must match)."""

    model: str
    lmbda: float
    N: int = 64
    M: int = 96
    steps: int = 4000
    batch_size: int = 16
    lr: float = 1e-3
    lr_drop_at: float = 0.7  # fraction of the steps after which lr /= 10
    aux_lr: float = 1e-3
    clip: float = 1.0
    seed: int = 0

    def name(self) -> str:
        return f"{self.model}/N{self.N}-M{self.M}/lmbda-{self.lmbda:g}"


def build_model(name: str, N: int, M: int) -> nn.Module:
    """CompressAI's class ``name`` with one-channel input and output."""
    import compressai.models as cm

    from compressai.models.utils import conv, deconv

    model = getattr(cm, MODELS[name])(N, M)
    model.g_a[0] = conv(1, N)
    model.g_s[-1] = deconv(N, 1)
    return model


def pad(x: Tensor) -> Tensor:
    return F.pad(x, (PAD, PAD, PAD, PAD))


def unpad(x: Tensor) -> Tensor:
    return x[..., PAD:-PAD, PAD:-PAD]


def rd_terms(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(MSE of the digits, bits per digit) of CompressAI's forward (noise/STE)."""
    out = model(pad(x))
    mse = F.mse_loss(unpad(out["x_hat"]), x)
    bits = sum(-torch.log2(p).sum() for p in out["likelihoods"].values()) / len(x)
    return mse, bits


def rd_loss(lmbda: float, mse: Tensor, bits: Tensor) -> Tensor:
    """CompressAI's ``lambda * 255^2 * MSE + bpp`` with bpp over the digit."""
    return lmbda * 255**2 * mse + bits / DIGIT_PIXELS


def load_digits(root: str) -> tuple[Tensor, Tensor]:
    """(training digits minus the held-out 5,000, held-out digits)."""
    from compressai_hqa.datasets import load_mnist

    images = load_mnist(root, train=True).images
    return images[:-HOLDOUT], images[-HOLDOUT:]


@torch.no_grad()
def heldout_metrics(model: nn.Module, held: Tensor, lmbda: float) -> dict:
    model.eval()
    mse_sum = bits_sum = 0.0
    for i in range(0, len(held), 500):
        mse, bits = rd_terms(model, held[i : i + 500])
        n = len(held[i : i + 500])
        mse_sum += float(mse) * n
        bits_sum += float(bits) * n
    model.train()
    mse, bits = mse_sum / len(held), bits_sum / len(held)
    loss = float(rd_loss(lmbda, torch.tensor(mse), torch.tensor(bits)))
    return {"heldout_loss": loss, "heldout_mse": mse, "heldout_bits": bits}


def _append(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _truncate_log(path: Path, step: int) -> None:
    """Drops rows written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if int(r["step"]) <= step)


def train(
    cfg: RunConfig,
    train_images: Tensor,
    held: Tensor,
    out: Path,
    checkpoint_every: int = 250,
    eval_every: int = 500,
    progress: bool = True,
) -> dict:
    """Trains (or resumes) one run in ``out``; returns its final held-out metrics."""
    from compressai.optimizers import net_aux_optimizer
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    final = out / "final.json"
    config_path = out / "config.json"
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        if stored != asdict(cfg):
            raise SystemExit(f"error: {out} holds a run of another config: {stored}")
    else:
        config_path.write_text(json.dumps(asdict(cfg), indent=1) + "\n")
    if final.exists():
        return json.loads(final.read_text())

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.N, cfg.M)
    opts = net_aux_optimizer(
        model,
        {
            "net": {"type": "Adam", "lr": cfg.lr},
            "aux": {"type": "Adam", "lr": cfg.aux_lr},
        },
    )
    step = 0
    ckpt = out / "checkpoint.pth.tar"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opts["net"].load_state_dict(state["net"])
        opts["aux"].load_state_dict(state["aux"])
        step = int(state["step"])
        for name in ("train_log.csv", "heldout.csv"):
            _truncate_log(out / name, step)
    drop = int(cfg.lr_drop_at * cfg.steps)
    model.train()
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=cfg.name(),
        disable=not progress,
        dynamic_ncols=True,
    )
    start = time.time()
    while step < cfg.steps:
        lr = cfg.lr if step < drop else cfg.lr / 10
        for group in opts["net"].param_groups:
            group["lr"] = lr
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x = train_images[
            torch.randint(len(train_images), (cfg.batch_size,), generator=g)
        ]
        torch.manual_seed(cfg.seed * 7_919 + step)  # the quantisation noise
        mse, bits = rd_terms(model, x)
        loss = rd_loss(cfg.lmbda, mse, bits)
        opts["net"].zero_grad()
        opts["aux"].zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opts["net"].step()
        aux = model.aux_loss()
        aux.backward()
        opts["aux"].step()
        step += 1
        bar.update(1)
        if step % 25 == 0:
            row = {
                "step": step,
                "loss": float(loss.detach()),
                "mse": float(mse.detach()),
                "bits": float(bits.detach()),
                "aux": float(aux.detach()),
                "lr": lr,
                "seconds": round(time.time() - start, 1),
            }
            _append(out / "train_log.csv", row)
            bar.set_postfix(
                loss=f"{float(loss.detach()):.4f}", bits=f"{float(bits.detach()):.0f}"
            )
        if step % eval_every == 0 or step == cfg.steps:
            _append(
                out / "heldout.csv",
                {"step": step, **heldout_metrics(model, held, cfg.lmbda)},
            )
        if step % checkpoint_every == 0 or step == cfg.steps:
            tmp = ckpt.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "net": opts["net"].state_dict(),
                    "aux": opts["aux"].state_dict(),
                    "step": step,
                },
                tmp,
            )
            os.replace(tmp, ckpt)
    bar.close()
    model.update(force=True)
    torch.save(model.state_dict(), out / "model.pth")
    metrics = {
        **asdict(cfg),
        **heldout_metrics(model, held, cfg.lmbda),
        "flat": flatness(out / "heldout.csv"),
    }
    final.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def flatness(heldout_csv: Path, tail: float = 0.2) -> float:
    """Relative change of the held-out loss over the last ``tail`` of training
    ((first - last) / last of the rows in the last 20 % of steps)."""
    with heldout_csv.open() as f:
        rows = [(int(r["step"]), float(r["heldout_loss"])) for r in csv.DictReader(f)]
    last_step = rows[-1][0]
    tail_rows = [loss for s, loss in rows if s >= (1 - tail) * last_step]
    return (tail_rows[0] - tail_rows[-1]) / tail_rows[-1]


def _widths_choice(root: Path, model: str) -> tuple[int, int] | None:
    path = root / model / "widths.json"
    if not path.exists():
        return None
    return tuple(json.loads(path.read_text())["chosen"])  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("sweep", "widths", "train"):
        p = sub.add_parser(name)
        p.add_argument("--model", choices=MODELS, required=True)
        p.add_argument("--data-root", required=True, help="folder with MNIST/raw/")
        p.add_argument("--output", type=Path, required=True, help="runs folder")
        p.add_argument("--steps", type=int, default=4000)
        p.add_argument("--batch-size", type=int, default=16)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sub.choices["train"].add_argument("--lmbda", type=float, required=True)
    sub.choices["train"].add_argument("--N", type=int, default=64)
    sub.choices["train"].add_argument("--M", type=int, default=96)
    sub.choices["sweep"].add_argument(
        "--lambdas", type=float, nargs="+", default=LAMBDAS
    )
    sub.choices["widths"].add_argument("--lmbda", type=float, default=2.5e-5)
    col = sub.add_parser("collect", help="copy logs and metrics into the repository")
    col.add_argument("--output", type=Path, required=True, help="runs folder")
    col.add_argument(
        "--dest", type=Path, default=Path(__file__).parent / "results" / "compressai"
    )
    args = parser.parse_args(argv)

    if args.command == "collect":
        for final in sorted(args.output.glob("*/*/*/final.json")):
            run = final.parent
            dest = args.dest / run.relative_to(args.output)
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("config.json", "final.json", "train_log.csv", "heldout.csv"):
                shutil.copy(run / name, dest / name)
        for widths in args.output.glob("*/widths.json"):
            (args.dest / widths.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(widths, args.dest / widths.parent.name / "widths.json")
        print(f"collected into {args.dest}")
        return

    torch.set_num_threads(args.threads)
    train_images, held = load_digits(args.data_root)
    common = {"steps": args.steps, "batch_size": args.batch_size}
    if args.command == "train":
        cfg = RunConfig(args.model, args.lmbda, args.N, args.M, **common)
        print(
            json.dumps(
                train(
                    cfg,
                    train_images,
                    held,
                    args.output / cfg.name(),
                    progress=not args.quiet,
                )
            )
        )
    elif args.command == "widths":
        results = {}
        for N, M in WIDTHS:
            cfg = RunConfig(args.model, args.lmbda, N, M, **common)
            # the sweep's own run at this lambda: the chosen width's is reused
            out = args.output / cfg.name()
            m = train(cfg, train_images, held, out, progress=not args.quiet)
            results[f"{N},{M}"] = m
            print(f"N={N} M={M}: held-out loss {m['heldout_loss']:.5f}")
        best = min(results, key=lambda k: results[k]["heldout_loss"])
        chosen = [int(v) for v in best.split(",")]
        path = args.output / args.model / "widths.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"lmbda": args.lmbda, "chosen": chosen, "runs": results}, indent=1
            )
            + "\n"
        )
        print(f"chosen N={chosen[0]} M={chosen[1]} -> {path}")
    else:
        N, M = _widths_choice(args.output, args.model) or (64, 96)
        for lmbda in args.lambdas:
            cfg = RunConfig(args.model, lmbda, N, M, **common)
            m = train(
                cfg,
                train_images,
                held,
                args.output / cfg.name(),
                progress=not args.quiet,
            )
            print(
                f"lambda={lmbda:g}: MSE {m['heldout_mse']:.5f}, "
                f"{m['heldout_bits']:.1f} bits/digit, flat {m['flat']:+.4f}"
            )


if __name__ == "__main__":
    main()
