"""Measured peak memory of encoding and decoding one image vs the codec's estimate.

For each layer of the shipped MNIST stack, image size and operation (encode,
argmin decode, sampled decode), a fresh subprocess loads the model, resets the
kernel's peak-RSS counter (``/proc/self/clear_refs``), runs the operation on one
CPU thread as the codec does, and reports the growth of the peak RSS over the
RSS before. ``compressai_hqa.models.memory`` must estimate at least that: the
table gives measured / estimated (the estimate includes its safety factor).

    python benchmarks/codec_memory.py [--sizes 64 256 512 1024] [--json PATH]

Linux only (``/proc``). Writes ``benchmarks/results/codec_memory.json`` by default.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import re, sys, warnings
warnings.filterwarnings("ignore")
import torch
from compressai_hqa import Decoding, zoo
from compressai_hqa.models.memory import OVERHEAD, decode_bytes, encode_bytes

layer, size, chunk = (int(a) for a in sys.argv[1:4])
op = sys.argv[4]
torch.set_num_threads(1)
model = zoo.hqa(layer=layer, pretrained=True)
g = torch.Generator().manual_seed(0)
x = torch.rand(chunk, 1, size, size, generator=g)
codes = torch.randint(0, 256, (chunk, *model.latent_shape(size, size)), generator=g)
with torch.no_grad():  # warm-up on a small input: oneDNN's kernels, lazy inits
    model.decode(codes[:1, :1, :1], Decoding("sample", generator=g))
    model.quantize(x[:1, :, :32, :32])

def status(key):
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1))

open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
with torch.no_grad():
    if op == "encode":
        out = model.quantize(x)
        estimate = encode_bytes(model, size, size)
    else:
        out = model.decode(codes, Decoding(op, generator=g), size=(size, size))
        estimate = decode_bytes(model, size, size, op)
print((status("VmHWM") - before) * 1024, chunk * estimate + OVERHEAD)
"""


def measure(layer: int, size: int, op: str, chunk: int) -> tuple[int, int]:
    """(measured peak growth, estimate) in bytes, from a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(layer), str(size), str(chunk), op],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    measured, estimate = map(int, out.stdout.split())
    return measured, estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512, 1024])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument(
        "--json", default=str(ROOT / "benchmarks/results/codec_memory.json")
    )
    args = parser.parse_args()
    rows = []
    cases = [(32, 16)] + [(s, 1) for s in args.sizes]  # digits go 16 at a time
    print("layer  size   chunk  operation  measured MB  estimate MB  ratio")
    for layer in args.layers:
        for size, chunk in cases:
            for op in ("encode", "argmin", "sample"):
                measured, estimate = measure(layer, size, op, chunk)
                ratio = measured / estimate
                rows.append(
                    dict(layer=layer, size=size, chunk=chunk, operation=op,
                         measured=measured, estimate=estimate, ratio=ratio)
                )  # fmt: skip
                print(
                    f"{layer:5d}  {size:5d}  {chunk:5d}  {op:9s}  "
                    f"{measured / 2**20:11.1f}  {estimate / 2**20:11.1f}  {ratio:5.2f}",
                    flush=True,
                )
    worst = max(rows, key=lambda r: r["ratio"])
    print(f"largest measured / estimate: {worst['ratio']:.2f} ({worst})")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
