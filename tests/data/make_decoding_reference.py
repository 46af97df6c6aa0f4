"""Writes ``decoding_reference.pt``: stochastic decodes of the code before the
``Decoding`` value existed (loose mode/generator/temperature arguments).

Run once, with the code of the commit that added this script, from the
repository root:

    python tests/data/make_decoding_reference.py

``tests/test_decoding.py`` decodes the same codes with the same seeds through
today's API and asserts bit-identical outputs (the same random numbers drawn in
the same order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from compressai_hqa import HQA, HQAConfig, LayerConfig
from compressai_hqa.codec.api import compress_images, decompress_images
from compressai_hqa.eval_model.codes import decode_spread
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate
from compressai_hqa.zoo.pretrained import load_weights, shipped_weights_path

HERE = Path(__file__).resolve().parent


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ce_model() -> HQA:
    """A seeded 3-layer stack whose upper layers predict the lower codes."""
    torch.manual_seed(0)
    layer = dict(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=8)
    config = HQAConfig(
        name="tiny-ce",
        in_channels=1,
        image_size=32,
        layers=(
            LayerConfig(**layer),
            LayerConfig(target="ce", **layer),
            LayerConfig(target="ce", **layer),
        ),
    )
    return HQA(config).eval()


@torch.no_grad()
def main() -> None:
    torch.set_num_threads(1)
    digits = np.load(HERE / "mnist_subset.npz")["test_images"][:6]
    x = torch.from_numpy(digits).float().div(255).unsqueeze(1)
    path = shipped_weights_path("hqa-mnist-0da85963.pth")
    model = HQA.from_state_dict(load_weights(path)).eval()
    size = x.shape[-2:]
    idx = model.quantize(x)
    out = model.compress(x)
    ref: dict[str, torch.Tensor] = {}
    ref["sample"] = model.decode(idx, "sample", g(1), size)
    ref["sample_t1.5"] = model.decode(idx, "sample", g(1), size, temperature=1.5)
    ref["average3"] = model.decode(idx, "average", g(2), size, 3, 0.7)
    ref["average_default"] = model.decode(idx, "average", g(2), size)
    ref["reconstruct_top"] = model.reconstruct(x, "sample", g(3), True, 2, 0.8)
    ref["reconstruct_average"] = model.reconstruct(x, "average", g(3), False, 2)
    ref["decompress"] = model.decompress(
        out["strings"], out["shape"], "sample", g(4), temperature=1.2
    )["x_hat"]
    data = compress_images(model, list(x.unbind(0)))
    ref["decompress_images"] = torch.stack(
        decompress_images(data, model, "sample", g(5), batch_size=4, temperature=1.1)
    )
    ref["spread"] = torch.tensor(
        decode_spread(model, x, num_samples=3, seed=6, batch_size=4, sample_top=True)
    )
    images = EvalImages("digits", x, tuple(str(i) for i in range(len(x))))
    for name, kw in {
        "eval_sample": dict(decode="sample", seed=7, temperature=1.3),
        "eval_average_top": dict(decode="average", num_samples=2, sample_top=True),
        "eval_estimate": dict(decode="sample", entropy_estimation=True, seed=8),
    }.items():
        result = evaluate(model, images, EvalOptions(batch_size=4, **kw), keep=6)
        ref[name] = torch.stack(result.reconstructions)
    tiny = ce_model()
    tidx = tiny.quantize(x)
    ref["ce_sample"] = tiny.decode(tidx, "sample", g(9), size, temperature=1.4)
    ref["ce_average"] = tiny.decode(tidx, "average", g(10), size, 3)
    torch.save(ref, HERE / "decoding_reference.pt")


if __name__ == "__main__":
    main()
