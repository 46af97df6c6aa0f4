#!/usr/bin/env python3
"""A long fuzz run of context-prior ``.hqa`` files (not collected by pytest).

Context-prior files of real MNIST digits at every layer of the shipped stack
(same-size and mixed-size images) are damaged with the mutations of
``test_codec_fuzz.py`` (bit flips, truncation, extension, insertion, deletion,
extreme header fields, random bytes; half of them with a repaired CRC) and
decoded with ``decompress_images``. Each must decode to a canonical file (its
codes re-encode to exactly its bytes), raise ``CorruptStreamError``, or raise
``MemoryLimitError`` (a header claiming more codes than the default memory budget
can decode; counted apart): anything else counts as a crash, a case slower than ``--slow`` seconds as a hang.

    OMP_NUM_THREADS=1 python tests/fuzz_context_prior.py --data-root ../shared/data \\
        --cases 10000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback

from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_codec_fuzz import mutate

from compressai_hqa import CorruptStreamError, zoo
from compressai_hqa.codec import (
    MemoryLimitError,
    compress_images,
    decompress_images,
    payload_coder,
    read_codes,
)
from compressai_hqa.codec.format import encode_payload, pack, unpack
from compressai_hqa.datasets import load_mnist


def canonical(data: bytes, model: torch.nn.Module) -> bool:
    """Whether a decodable file is exactly the encoding of its codes."""
    header, codes = read_codes(data, model)
    coder, _ = payload_coder(model, header.prior)
    shapes = [header.latent_shape(s) for s in header.sizes]
    flat = torch.cat([c.reshape(-1) for c in codes]).numpy()
    payload = encode_payload(flat, header.prior, model.codebook_size, coder, shapes)
    return pack(header, payload) == data


def _describe(data: bytes) -> str:
    """Layer, images and code maps of a file (what made a case slow)."""
    try:
        header, payload = unpack(data)
    except CorruptStreamError:
        return "refused by its header"
    maps = sorted({header.latent_shape(s) for s in header.sizes})
    return (
        f"layer {header.layer}, {header.count} images, maps {maps[:3]}, "
        f"{header.total_codes} codes, {len(payload)} payload bytes"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--cases", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slow", type=float, default=60.0, help="seconds: a hang")
    args = p.parse_args()
    digits = load_mnist(args.data_root, train=False).images[:6]
    mixed = [digits[0], digits[1][:, 3:23, 5:29], digits[2][:, :9, :7]]
    stack = zoo.hqa(pretrained=True).eval()
    files = []
    for layer in range(1, stack.num_layers + 1):
        model = stack.truncate(layer).eval()
        for images in (list(digits[3:6].unbind(0)), mixed):
            data = compress_images(model, images, "context")
            header_bytes = len(data) - len(unpack(data)[1]) - 4
            files.append((model, data, header_bytes))
    rng = random.Random(args.seed)
    counts = {"decoded": 0, "refused": 0, "over budget": 0, "crashes": 0,
              "not canonical": 0}  # fmt: skip
    slowest, what, start = 0.0, "", time.perf_counter()
    for i in range(args.cases):
        model, base, header_bytes = files[i % len(files)]
        data = mutate(base, rng, header_bytes)
        t = time.perf_counter()
        try:
            decompress_images(data, model)
            counts["decoded"] += 1
            counts["not canonical"] += not canonical(data, model)
        except MemoryLimitError:  # a ValueError, not a CorruptStreamError
            counts["over budget"] += 1
        except CorruptStreamError:
            counts["refused"] += 1
        except Exception:  # everything else is a failure of the decoder
            counts["crashes"] += 1
            traceback.print_exc()
        if time.perf_counter() - t > slowest:
            slowest, what = time.perf_counter() - t, _describe(data)
        if (i + 1) % 1000 == 0:
            print(f"{i + 1} cases: {counts}, slowest {slowest:.2f} s", flush=True)
    hangs = int(slowest > args.slow)
    elapsed = time.perf_counter() - start
    print(
        f"{args.cases} mutated context-prior files of {len(files)} originals in "
        f"{elapsed:.0f} s: {counts}, slowest case {slowest:.2f} s ({what}; "
        f"{'a hang' if hangs else 'no hang'} at {args.slow} s)"
    )
    return int(counts["crashes"] > 0 or counts["not canonical"] > 0 or hangs > 0)


if __name__ == "__main__":
    raise SystemExit(main())
