#!/usr/bin/env python3
"""Every number of the model card: each layer of an HQA MNIST stack on MNIST.

For each layer (the stack truncated there) and decoding mode:

* ``argmin``: deterministic decoding;
* ``sample``: stochastic decoding (re-quantising by sampling at every lower
  layer), over ``--seeds`` seeds: mean and standard deviation;
* ``sample-top``: as ``sample``, and the top code is drawn from q(k | z_e) too
  (the paper's Algorithm 3 in full; the stream still carries the argmin code);

it reports the ideal rate (bits per image and bpp), the real rANS stream size,
MSE, PSNR, the error of the shipped MNIST classifier on the reconstructions, and
rFID on the first ``--rfid-n`` images (seed 0 for ``sample``); and what the codes
carry: codes used, their entropy, the posterior's mean entropy and the per-pixel
spread of stochastic decodes (:mod:`compressai_hqa.eval_model.codes`). Writes a
JSON file (whose ``"results"`` the ``rate-perception`` figure reads) and a
Markdown table.

    # the shipped weights on the MNIST test set
    python zoo/tools/evaluate_zoo.py --data-root ../shared/data
    # a candidate on the validation split (the last 5000 training images)
    python zoo/tools/evaluate_zoo.py --data-root ../shared/data \\
        --weights runs/x/model.pth --split holdout --rfid-n 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from pathlib import Path
from typing import Any

import torch

from compressai_hqa import zoo
from compressai_hqa.datasets import load_mnist
from compressai_hqa.decoding import Decoding, check_temperature
from compressai_hqa.eval_model.codes import code_statistics, decode_spread
from compressai_hqa.eval_model.data import EvalImages, load_eval_images
from compressai_hqa.eval_model.evaluate import EvalOptions, summary
from compressai_hqa.models import HQA

#: Decoding modes of the card: deterministic (``argmin``), and sampled over
#: ``--seeds`` seeds (``sample``: the lower layers; ``sample-top``: the top code
#: too).
MODES = ("argmin", "sample", "sample-top")


def _images(args: argparse.Namespace) -> EvalImages:
    if args.split == "test":
        images = load_eval_images(f"mnist:{args.data_root}")
    else:
        train = load_mnist(args.data_root, train=True)
        held = slice(len(train) - args.holdout, len(train))
        ids = tuple(f"mnist-train/{i:05d}" for i in range(held.start, held.stop))
        images = EvalImages(
            "mnist-train-holdout", train.images[held], ids, train.labels[held]
        )
    return images if args.num_images is None else images.subset(args.num_images)


def _evaluate_layer(
    model: HQA,
    images: EvalImages,
    args: argparse.Namespace,
    classifier: torch.nn.Module,
    inception: Any,
    reference: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"bits": model.bits(32, 32)}
    out["bpp"] = out["bits"] / (32 * 32)
    out["codes"] = code_statistics(model, images.images).to_dict()
    if args.spread_n:
        spread = images.images[: args.spread_n]
        t = args.temperature
        sampling = Decoding("sample", t, seed=0)
        out["codes"]["spread"] = decode_spread(model, spread, decoding=sampling)
        out["codes"]["spread_top"] = decode_spread(
            model, spread, decoding=sampling, sample_top=True
        )
    with_rfid = args.rfid_layers is None or model.num_layers in args.rfid_layers
    for mode in args.modes.split(","):
        seeds = [0] if mode == "argmin" else list(range(args.seeds))
        runs = []
        for seed in seeds:
            decoding = Decoding(
                "argmin" if mode == "argmin" else "sample",
                args.temperature,
                seed=seed,
            )
            options = EvalOptions(
                decoding=decoding,
                sample_top=mode == "sample-top",
                batch_size=args.batch_size,
            )
            keep = args.rfid_n if seed == 0 and with_rfid else 0
            run = summary(
                model, images, options, classifier, keep, inception, reference
            )
            run["stream_bits"] = run.pop("bits")
            runs.append(run)
        out[mode] = _summarise(runs)
    return out


def _summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"runs": runs}
    for key in runs[0]:
        values = [r[key] for r in runs if key in r]
        summary[key] = statistics.fmean(values)
        if len(values) > 1:
            summary[f"{key}_std"] = statistics.stdev(values)
    return summary


def pm(
    d: dict[str, Any], key: str, fmt: str, scale: float = 1.0, unit: str = ""
) -> str:
    """``d[key]`` (± its standard deviation over seeds) as a table cell."""
    if key not in d:
        return "-"
    text = format(d[key] * scale, fmt)
    if f"{key}_std" in d:
        text += " ± " + format(d[f"{key}_std"] * scale, fmt)
    return text + unit


def markdown(result: dict[str, Any]) -> str:
    n, seeds = result["rfid_n"], result["seeds"]
    lines = [
        f"| layer | bits / image | bpp | rANS bytes | MSE | PSNR (dB) | class. error "
        f"| rFID (n={n}) | MSE, sampled | class. error, sampled | rFID, sampled |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, row in sorted(result["layers"].items(), key=lambda kv: int(kv[0])):
        a, s = row.get("argmin", {}), row.get("sample", {})

        cells = [
            layer,
            row["bits"],
            f"{row['bpp']:.4f}",
            pm(a, "stream_bits", ".0f", 1 / 8),
            pm(a, "mse", ".4f"),
            pm(a, "psnr", ".2f"),
            pm(a, "class_error", ".2f", 100, " %"),
            pm(a, "rfid", ".1f"),
            pm(s, "mse", ".4f"),
            pm(s, "class_error", ".2f", 100, " %"),
            pm(s, "rfid", ".1f"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        "| layer | codes used / K | code entropy (bits) | posterior entropy (bits) "
        "| decode spread | decode spread, top sampled | MSE, top sampled "
        "| class. error, top sampled | rFID, top sampled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, row in sorted(result["layers"].items(), key=lambda kv: int(kv[0])):
        c, t = row["codes"], row.get("sample-top", {})
        cells = [
            layer,
            f"{c['codes_used']} / {c['codebook_size']}",
            f"{c['entropy_bits']:.2f}",
            f"{c['posterior_entropy_bits']:.3f}",
            f"{c['spread']:.4f}" if "spread" in c else "-",
            f"{c['spread_top']:.4f}" if "spread_top" in c else "-",
            pm(t, "mse", ".4f"),
            pm(t, "class_error", ".2f", 100, " %"),
            pm(t, "rfid", ".1f"),
        ]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    lines.append("")
    note = f"{result['num_images']} images ({result['dataset']})"
    note += (
        "; decode spread: per-pixel standard deviation over 4 stochastic decodes "
        "of the same codes, mean over pixels and images"
    )
    if any("sample" in row for row in result["layers"].values()):
        note += f"; sampled: mean ± std over {seeds} seeds of stochastic decoding"
        note += " (rFID: seed 0)" if n else ""
    if result.get("temperature", 1.0) != 1.0:
        note += f"; every draw at temperature {result['temperature']:g}"
    lines.append(note + ".")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True, help="MNIST root")
    p.add_argument(
        "--weights", default=None, help="state dict to evaluate (default: shipped)"
    )
    p.add_argument(
        "--config",
        default=None,
        help="zoo config (default: that of --weights, else mnist)",
    )
    p.add_argument("--layers", default=None, help="e.g. 1,5 (default: all)")
    p.add_argument(
        "--split",
        choices=("test", "holdout"),
        default="test",
        help="MNIST test split, or the last --holdout training images",
    )
    p.add_argument("--holdout", type=int, default=5000, help="(default: 5000)")
    p.add_argument("--num-images", type=int, default=None, help="first N only")
    p.add_argument("--seeds", type=int, default=5, help="stochastic decodes (5)")
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help="decoding modes to evaluate (default: %(default)s)",
    )
    p.add_argument(
        "--rfid-n", type=int, default=1000, help="rFID images, 0: none (1000)"
    )
    p.add_argument(
        "--rfid-layers", default=None, help="rFID at these layers only, e.g. 5"
    )
    p.add_argument(
        "--spread-n",
        type=int,
        default=1000,
        help="images of the decode-spread statistic, 0: none (1000)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="stochastic decodes draw from each posterior's logits divided by "
        "this (1: the paper's draws; default: %(default)s)",
    )
    p.add_argument("--batch-size", type=int, default=500, help="(default: 500)")
    p.add_argument("--output", type=Path, default=None, help="JSON file to write")
    args = p.parse_args()
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        p.error(f"unknown --modes {sorted(unknown)}: choose from {','.join(MODES)}")
    try:
        check_temperature(args.temperature)
    except ValueError as err:
        p.error(f"--{err}")
    if args.rfid_layers is not None:
        args.rfid_layers = {int(v) for v in args.rfid_layers.split(",")}

    from compressai_hqa.metrics.classifier import load_classifier

    images = _images(args)
    stack = zoo.hqa(pretrained=True, config=args.config, weights=args.weights)
    layers = (
        range(1, stack.num_layers + 1)
        if args.layers is None
        else [int(v) for v in args.layers.split(",")]
    )
    classifier = load_classifier("cpu")
    inception = reference = None
    if args.rfid_n:
        from compressai_hqa.eval_model.rfid import reference_features
        from compressai_hqa.metrics.inception import load_inception

        args.rfid_n = min(args.rfid_n, len(images))
        inception = load_inception("cpu")
        reference = reference_features(images, args.rfid_n, inception, progress=True)
    result: dict[str, Any] = {
        "weights": str(args.weights or "shipped"),
        "config": stack.config.name,
        "dataset": images.name,
        "num_images": len(images),
        "seeds": args.seeds,
        "temperature": args.temperature,
        "rfid_n": args.rfid_n,
        "layers": {},
    }
    start = time.perf_counter()
    for layer in layers:
        model = stack.truncate(layer).eval()
        row = _evaluate_layer(model, images, args, classifier, inception, reference)
        result["layers"][str(layer)] = row
        print(f"layer {layer}: {json.dumps(_brief(row))}", flush=True)
    result["wall_s"] = time.perf_counter() - start
    result["name"] = f"HQA {stack.config.name} (argmin)"
    result["results"] = _curves(result["layers"])
    table = markdown(result)
    print(table)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))
        args.output.with_suffix(".md").write_text(table + "\n")


def _curves(layers: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """Argmin metrics per layer in ``eval_model``'s "results" layout (rising
    rate), so ``python -m compressai_hqa.figures rate-perception`` plots them."""
    rows = sorted(
        (row for row in layers.values() if "argmin" in row), key=lambda r: r["bits"]
    )
    return {
        "bits": [r["bits"] for r in rows],
        "bpp": [r["bpp"] for r in rows],
        "mse": [r["argmin"]["mse"] for r in rows],
        "class-error": [r["argmin"]["class_error"] for r in rows],
        "rfid": [r["argmin"].get("rfid") for r in rows],
    }


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("mse", "class_error", "rfid")
    brief = {
        mode: {k: round(v, 5) for k, v in row[mode].items() if k in keep}
        for mode in MODES
        if mode in row
    }
    return {"bits": row["bits"], "codes": row["codes"], **brief}


if __name__ == "__main__":
    main()
