#!/usr/bin/env python3
"""Fits the context prior of every layer of an HQA stack, chosen on held-out digits.

1. Codes: the argmin codes of the 60,000 MNIST training digits at every layer
   (cached in ``WORK/codes-<weights>.pt``); the last ``--holdout`` (5,000)
   digits are held out, never trained on.
2. For every layer, every candidate of :data:`CANDIDATES` is fitted on the
   first 55,000 digits (``WORK/<layer>-<name>.ckpt``, resumable, progress on
   stdout) and its exact rate (the integer frequencies that drive rANS) is
   measured on the held-out digits, next to count-table baselines (add-0.5
   tables: one static table, one per position, one per left and upper
   neighbour). ``--table`` writes the comparison (markdown, and JSON beside it).
3. ``--output``: the chosen candidate of every layer (:func:`chosen`: the
   cheapest to decode within 0.5 % of the fewest held-out bits), in one context
   prior file (``compressai_hqa.codec.context``), with the
   fingerprint of the weights of each layer.

    python examples/estimate_context_prior.py --data-root ../shared/data \\
        --work ~/runs/context --table zoo/results/context-prior-holdout.md \\
        --output zoo/hqa-mnist-context.pth

Rename the output to ``hqa-mnist-context-<first 8 hex of its SHA-256>.pth`` and
pin it in ``compressai_hqa.codec.context.CONTEXT_PRIORS`` to ship it.
``examples/estimate_prior.py`` then measures it on the 10,000 test digits.
"""

from __future__ import annotations

import argparse
import json
import os

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from compressai_hqa import zoo
from compressai_hqa.codec import weights_fingerprint
from compressai_hqa.codec.context import ContextPrior
from compressai_hqa.datasets import load_mnist
from compressai_hqa.entropy_models import ContextModel
from compressai_hqa.entropy_models.context_fit import (
    ContextFitConfig,
    fit_context_model,
    model_bits,
)
from compressai_hqa.files import atomic_save, file_digest, load_torch_file

BASE = ContextFitConfig()
#: A candidate with fewer parameters is preferred within this fraction of the best.
TOLERANCE = 0.005
#: layer -> candidate name -> configuration (compared on the held-out digits).
CANDIDATES: dict[int, dict[str, ContextFitConfig]] = {
    1: {
        "r2c2-w128": replace(BASE, rows=2, cols=2, epochs=3),
        "r3c3-w128": replace(BASE, rows=3, cols=3, epochs=3),
    },
    2: {
        "r2c2-w128": replace(BASE, rows=2, cols=2),
        "r3c3-w128": replace(BASE, rows=3, cols=3),
    },
    3: {
        "r3c3-w128": replace(BASE, rows=3, cols=3, epochs=6, batch_size=2048),
        "r3c3-w128-free": replace(
            BASE, rows=3, cols=3, epochs=6, batch_size=2048, codebook_inputs=False
        ),
        "r3c3-w128-d2": replace(
            BASE, rows=3, cols=3, depth=2, epochs=6, batch_size=2048
        ),
    },
    4: {
        "r1c1-w64": replace(BASE, rows=1, cols=1, width=64, epochs=12, batch_size=1024),
        "r1c1-w128": replace(BASE, rows=1, cols=1, epochs=12, batch_size=1024),
        "r1c1-w128-free": replace(
            BASE, rows=1, cols=1, epochs=12, batch_size=1024, codebook_inputs=False
        ),
    },
    5: {"w64": replace(BASE, rows=1, cols=1, width=64, epochs=12, batch_size=1024)},
}


@torch.no_grad()
def layer_codes(
    stack: Any, images: torch.Tensor, cache: Path
) -> dict[int, torch.Tensor]:
    """Codes (N, h, w) of ``images`` at every layer, cached in ``cache``."""
    if cache.is_file():
        return {int(k): v.long() for k, v in load_torch_file(cache).items()}
    codes = {}
    for layer in range(1, stack.num_layers + 1):
        model = stack.truncate(layer).eval()
        parts = [
            model.quantize(images[i : i + 1000]) for i in range(0, len(images), 1000)
        ]
        codes[layer] = torch.cat(parts).to(torch.int16)
        print(f"codes of layer {layer}: {tuple(codes[layer].shape)}", flush=True)
    atomic_save({str(k): v for k, v in codes.items()}, cache)
    return {k: v.long() for k, v in codes.items()}


def count_table_bits(
    train: torch.Tensor, held: torch.Tensor, k: int
) -> dict[str, float]:
    """Held-out bits per code of add-0.5 count tables (the baselines)."""
    n, h, w = held.shape

    def bits(keys_train: torch.Tensor, keys_held: torch.Tensor, size: int) -> float:
        table = torch.zeros(size * k, dtype=torch.float64)
        table.index_add_(
            0,
            keys_train * k + train.reshape(-1),
            torch.ones(keys_train.numel(), dtype=torch.float64),
        )
        counts = table.view(size, k)
        p = (counts[keys_held, held.reshape(-1)] + 0.5) / (
            counts[keys_held].sum(1) + 0.5 * k
        )
        return float(-torch.log2(p).mean())

    def left_up(maps: torch.Tensor) -> torch.Tensor:
        pad = torch.nn.functional.pad(maps, (1, 0, 1, 0), value=k)
        return (pad[:, 1:, :-1] * (k + 1) + pad[:, :-1, 1:]).reshape(-1)

    position_train = torch.arange(h * w).repeat(len(train))
    position_held = torch.arange(h * w).repeat(n)
    return {
        "static": bits(
            torch.zeros_like(position_train), torch.zeros_like(position_held), 1
        ),
        "per position": bits(position_train, position_held, h * w),
        "left + up": bits(left_up(train), left_up(held), (k + 1) ** 2),
    }


def sweep_layer(
    layer: int,
    codes: torch.Tensor,
    codebook: torch.Tensor,
    holdout: int,
    work: Path,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Fits every candidate of ``layer``; held-out bits of each and of the baselines.

    ``epochs`` overrides the candidates' float epochs (quick checks); a
    candidate has at most K / 2 groups.
    """
    train, held = codes[:-holdout], codes[-holdout:]
    codes_per_map = held.shape[1] * held.shape[2]
    baselines = count_table_bits(train, held, codebook.shape[0])
    rows: dict[str, Any] = {
        name: {"bits_per_code": b, "bits_per_digit": b * codes_per_map}
        for name, b in baselines.items()
    }
    for name, config in CANDIDATES[min(layer, max(CANDIDATES))].items():
        config = replace(config, groups=min(config.groups, codebook.shape[0] // 2))
        if epochs is not None:
            config = replace(config, epochs=epochs, batch_size=256)
        out = work / f"{layer}-{name}.pth"
        if out.is_file():
            result = load_torch_file(out)
        else:
            print(f"layer {layer}, {name}: {asdict(config)}", flush=True)
            ckpt = work / f"{layer}-{name}.ckpt"
            model = fit_context_model(train, held, config, codebook, ckpt)
            history = load_torch_file(ckpt)["history"]
            result = {
                "model": model.state(),
                "config": asdict(config),
                "float_bits_per_code": [
                    r["holdout_bits"] for r in history if r["phase"] == 0
                ][-1:],
            }
            atomic_save(result, out)
        # measured now, with this version's integer arithmetic
        b = model_bits(ContextModel.from_state(result["model"]), held)
        float_bits = result["float_bits_per_code"]
        rows[name] = {
            "bits_per_code": b,
            "bits_per_digit": b * codes_per_map,
            "float_bits_per_code": float_bits[0] if float_bits else None,
            "parameters": sum(
                t.numel() for t in _tensors(result["model"]) if t.dim() > 0
            ),
            "config": result["config"],
        }
        print(f"layer {layer}, {name}: {b:.4f} bits/code held out", flush=True)
    return rows


def _tensors(state: Any) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for v in state.values() for t in _tensors(v)]
    if isinstance(state, (list, tuple)):
        return [t for v in state for t in _tensors(v)]
    return []


def chosen(rows: dict[str, Any]) -> str:
    """The shipped candidate of a layer: the one with the fewest parameters (the
    cheapest to decode) among those within :data:`TOLERANCE` of the fewest bits."""
    fitted = {n: r for n, r in rows.items() if "config" in r}
    best = min(r["bits_per_code"] for r in fitted.values())
    close = [
        n for n, r in fitted.items() if r["bits_per_code"] <= best * (1 + TOLERANCE)
    ]
    return min(close, key=lambda n: (fitted[n]["parameters"], n))


def write_table(results: dict[int, dict[str, Any]], path: Path, command: str) -> None:
    lines = [
        "# Context prior: candidates on the 5,000 held-out training digits",
        "",
        f"`{command}`",
        "",
        "Bits per code and per digit of the held-out digits' codes (exact: the "
        "integer frequencies that drive rANS; *float* is the same network before "
        "quantisation-aware training). Count tables: add-0.5 estimates. The shipped "
        "prior of each layer (**bold**) is the candidate with the fewest parameters "
        f"(the cheapest to decode) within {100 * TOLERANCE:g} % of the fewest bits.",
        "",
        "| layer | model | bits / code | bits / digit | float bits / code "
        "| parameters |",
        "|---|---|---|---|---|---|",
    ]
    for layer, rows in sorted(results.items()):
        best = chosen(rows)
        for name, r in rows.items():
            mark = "**" if name == best else ""
            fb = r.get("float_bits_per_code")
            lines.append(
                f"| {layer} | {mark}{name}{mark} | {r['bits_per_code']:.3f} | "
                f"{r['bits_per_digit']:.1f} | {'' if fb is None else f'{fb:.3f}'} | "
                f"{r.get('parameters', '')} |"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    table = {str(k): v for k, v in results.items()}
    path.with_suffix(".json").write_text(json.dumps(table, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="MNIST root")
    p.add_argument("--work", type=Path, required=True, help="codes, checkpoints, fits")
    p.add_argument("--weights", default=None, help="state dict (default: shipped)")
    p.add_argument("--holdout", type=int, default=5000, help="held-out digits")
    p.add_argument("--layers", type=int, nargs="*", default=None, help="default: all")
    p.add_argument("--table", type=Path, default=None, help="comparison (markdown)")
    p.add_argument("--output", type=Path, default=None, help="the context prior file")
    p.add_argument(
        "--num-images",
        type=int,
        default=None,
        metavar="N",
        help="the first N training digits only (quick checks)",
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="float epochs of every candidate"
    )
    args = p.parse_args()

    stack = zoo.hqa(pretrained=True, weights=args.weights).eval()
    args.work.mkdir(parents=True, exist_ok=True)
    tag = weights_fingerprint(stack).hex()[:8]
    images = load_mnist(args.data_root, train=True).images[: args.num_images]
    cache = args.work / f"codes-{tag}-{len(images)}.pt"
    codes = layer_codes(stack, images, cache)
    layers = args.layers or list(range(stack.num_layers, 0, -1))
    results = {}
    for layer in layers:
        codebook = stack.layers[layer - 1].codebook.detach().cpu()
        results[layer] = sweep_layer(
            layer, codes[layer], codebook, args.holdout, args.work / tag, args.epochs
        )
    if args.table is not None:
        command = (
            "python examples/estimate_context_prior.py --data-root ../shared/data "
            f"--work WORK --table {args.table}"
        )
        write_table(results, args.table, command)
        print(f"wrote {args.table}")
    if args.output is not None:
        models, weights = {}, {}
        for layer, rows in results.items():
            state = load_torch_file(args.work / tag / f"{layer}-{chosen(rows)}.pth")
            models[layer] = ContextModel.from_state(state["model"])
            weights[layer] = weights_fingerprint(stack.truncate(layer))
        fit = {
            "holdout": args.holdout,
            "chosen": {str(k): chosen(v) for k, v in results.items()},
            "candidates": {str(k): v[chosen(v)]["config"] for k, v in results.items()},
        }
        ContextPrior(f"hqa-{stack.config.name}", models, weights, fit).save(args.output)
        print(f"wrote {args.output} (SHA-256 {file_digest(args.output)})")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    main()
