"""The integer context model, its coder and its fitting (small, synthetic maps)."""

from __future__ import annotations

import math

from dataclasses import replace

import numpy as np
import pytest
import torch

from compressai_hqa import CorruptStreamError
from compressai_hqa.entropy_models import ContextCoder, ContextModel
from compressai_hqa.entropy_models.context import (
    Affine,
    floor_frequency,
    integer_cdf,
    min_symbol_bits,
)
from compressai_hqa.entropy_models.context_fit import (
    ContextFitConfig,
    causal_offsets,
    fit_context_model,
    model_bits,
)
from compressai_hqa.entropy_models.context_net import ContextNet, codebook_groups

K, G = 16, 4


def random_model(seed: int = 0, width: int = 32, depth: int = 1) -> ContextModel:
    """An untrained but valid model (random weights, quantised and exported)."""
    torch.manual_seed(seed)
    offsets = causal_offsets(2, 2, 8, 8)
    symbols = torch.randperm(K)
    net = ContextNet(K, symbols, G, offsets, (4, 4), width, depth, torch.randn(K, 6))
    net.quantize()
    return net.export()


def structured_maps(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Maps where a code mostly repeats its left or upper neighbour."""
    g = torch.Generator().manual_seed(seed)
    maps = torch.randint(0, K, (n, h, w), generator=g)
    for y in range(h):
        for x in range(w):
            keep = torch.rand(n, generator=g)
            if x > 0:
                maps[keep < 0.5, y, x] = maps[keep < 0.5, y, x - 1]
            if y > 0:
                up = (keep >= 0.5) & (keep < 0.8)
                maps[up, y, x] = maps[up, y - 1, x]
    return maps


def test_integer_cdfs_are_valid_for_any_logits() -> None:
    table = torch.tensor([round((1 << 20) * math.exp(-d / 16)) for d in range(256)])
    logits = torch.tensor(
        [[0] * 16, [10**9] + [-(10**9)] * 15, list(range(16)), [5, -3] * 8]
    )
    cdf = integer_cdf(logits, 0, table)
    assert cdf[:, 0].eq(0).all() and cdf[:, -1].eq(1 << 16).all()
    assert cdf.diff(dim=1).min() >= floor_frequency(16) == 16
    assert torch.equal(cdf[0], torch.arange(17) * 4096)  # uniform: exact
    assert int(cdf[1, 1]) == (1 << 16) - 15 * 16  # the most a symbol can get
    assert min_symbol_bits(16) == pytest.approx(16 - math.log2((1 << 16) - 240))


def test_features_equal_an_independent_int64_computation() -> None:
    model = random_model(width=64, depth=2)
    g = torch.Generator().manual_seed(3)
    context = torch.randint(0, K + 1, (500, len(model.offsets)), generator=g)
    position = torch.randint(0, 16, (500,), generator=g)
    z = model.position[position].clone()
    for j in range(len(model.offsets)):
        z += model.embedding[j, context[:, j]]
    a = (z >> model.input_shift).clamp(0, 255)
    for layer in model.hidden:
        a = ((a @ layer.weight.t() + layer.bias) >> layer.shift).clamp(0, 255)
    feats = model.features(context, position)
    assert torch.equal(feats.long(), a)
    logits = a @ model.group_head.weight.t() + model.group_head.bias
    expected = integer_cdf(logits, model.logit_shift, model.exp_table)
    assert torch.equal(model.group_cdf(feats), expected)


def test_quantised_net_computes_the_exported_integers() -> None:
    torch.manual_seed(0)
    offsets = causal_offsets(1, 1, 4, 4)
    net = ContextNet(K, torch.arange(K), G, offsets, (4, 4), 16, 1)
    net.quantize()
    model = net.export()
    context = torch.randint(0, K + 1, (64, len(offsets)))
    position = torch.randint(0, 16, (64,))
    with torch.no_grad():
        group_nats, _ = net(context, position)
    logits = model.group_head(model.features(context, position))
    scale = 2.0 ** (model.logit_shift + 4)  # nats -> integer logits
    assert torch.equal((group_nats * scale).round(), logits)


@pytest.mark.parametrize("batch_size", [1, 7, 1 << 16])
def test_round_trip_any_batch_split_mixed_shapes(batch_size: int) -> None:
    model = random_model()
    shapes = [(4, 4)] * 5 + [(1, 1), (3, 7), (3, 7), (9, 2)] + [(4, 4)] * 3
    maps = [structured_maps(1, h, w, seed=i)[0] for i, (h, w) in enumerate(shapes)]
    codes = torch.cat([m.reshape(-1) for m in maps]).numpy()
    stream = ContextCoder(model).encode(codes, shapes)
    coder = ContextCoder(model, batch_size=batch_size)
    assert coder.encode(codes, shapes) == stream
    assert np.array_equal(coder.decode(stream, shapes), codes)


def test_corrupt_streams_are_refused() -> None:
    model = random_model()
    coder = ContextCoder(model)
    shapes = [(4, 4)] * 3
    codes = structured_maps(3, 4, 4).reshape(-1).numpy()
    stream = coder.encode(codes, shapes)
    bad = [
        stream[:-4],
        stream + bytes(4),
        stream[:4] + bytes([stream[4] ^ 1]) + stream[5:],
        stream[:-1],
        b"",
        bytes(coder.max_stream_length(48) + 4),
    ]
    for data in bad:
        with pytest.raises(CorruptStreamError):
            coder.decode(data, shapes)
    with pytest.raises(CorruptStreamError):
        coder.decode(stream, [(4, 4)] * 4)
    # a short stream cannot claim many codes (each costs >= 2 min_symbol_bits)
    assert coder.min_stream_length(10**6) > 1000
    with pytest.raises(CorruptStreamError, match="takes 8"):
        coder.decode(stream, [(1000, 1000)])
    with pytest.raises(CorruptStreamError):
        coder.decode("text", shapes)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        coder.encode(codes + K, shapes)


def test_model_validation_refuses_inexact_or_malformed_tables() -> None:
    model = random_model()
    state = model.state()
    assert ContextModel.from_state(state).digest == model.digest
    w = model.group_head.weight.clone()
    w[0, 0] = 128
    with pytest.raises(ValueError, match="above 127"):
        replace(model, group_head=Affine(w, model.group_head.bias))
    bias = torch.full_like(model.group_head.bias, 1 << 24)
    with pytest.raises(ValueError, match="not exact"):
        replace(model, group_head=Affine(model.group_head.weight, bias))
    with pytest.raises(ValueError, match="permutation"):
        replace(model, symbols=torch.zeros(K, dtype=torch.int64))
    with pytest.raises(ValueError, match="causal"):
        replace(model, offsets=((0, 1), *model.offsets[1:]))
    with pytest.raises(ValueError, match="exp_table"):
        replace(model, exp_table=model.exp_table.flip(0))
    with pytest.raises(ValueError, match="int64"):
        replace(model, embedding=model.embedding.float())
    with pytest.raises(ValueError, match="not a context model"):
        ContextModel.from_state({**state, "hidden": 3})


def test_codebook_groups_is_a_balanced_permutation() -> None:
    codebook = torch.randn(K, 5)
    symbols = codebook_groups(codebook, G)
    assert torch.equal(torch.sort(symbols).values, torch.arange(K))
    near = torch.cat([torch.zeros(8, 5), torch.ones(8, 5)]) + 0.01 * codebook[:, :]
    groups = codebook_groups(near, 2) // 8
    assert groups[:8].unique().numel() == 1 and groups[8:].unique().numel() == 1


def test_fit_learns_context_and_resumes_to_the_same_model(tmp_path) -> None:
    maps = structured_maps(1200, 4, 4, seed=1)
    train, held = maps[:1000], maps[1000:]
    config = ContextFitConfig(
        rows=1, cols=1, width=16, groups=G, epochs=6, quantized_epochs=1, lr=1e-2
    )
    config = replace(config, batch_size=256, quantized_lr=1e-3)
    codebook = torch.randn(K, 4)
    full = fit_context_model(train, held, config, codebook, log=None)
    bits = model_bits(full, held)
    assert bits < 0.7 * math.log2(K)  # far below the uniform prior's 4 bits

    class Stop(Exception):
        pass

    calls = []

    def stop_once(line: str) -> None:
        calls.append(line)
        if len(calls) == 9:
            raise Stop

    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(Stop):
        fit_context_model(train, held, config, codebook, ckpt, log=stop_once)
    resumed = fit_context_model(train, held, config, codebook, ckpt, log=None)
    assert resumed.digest == full.digest
    other = replace(config, seed=1)
    with pytest.raises(ValueError, match="another fit"):
        fit_context_model(train, held, other, codebook, ckpt, log=None)


def test_the_schedule_decodes_each_code_once_after_all_its_neighbours() -> None:
    model = random_model()
    shapes = [(4, 4), (1, 9), (7, 1), (5, 3), (16, 16), (4, 4)]
    plan = ContextCoder(model).schedule(shapes)
    total = sum(h * w for h, w in shapes)
    assert sorted(plan.index.tolist()) == list(range(total))
    assert sum(plan.steps) == total and len(plan.steps) == 16 + 3 * 15 - 0
    step_of = {}
    end = 0
    for t, k in enumerate(plan.steps):
        for i, y, x in zip(
            *(a[end : end + k].tolist() for a in plan[1:4]), strict=True
        ):
            step_of[i, y, x] = t
        end += k
    for (i, y, x), t in step_of.items():
        h, w = shapes[i]
        for dy, dx in model.offsets:
            if 0 <= y + dy < h and 0 <= x + dx < w:
                assert step_of[i, y + dy, x + dx] < t
    first = plan.steps[0]
    assert plan.image[:first].tolist() == list(range(len(shapes)))  # file order
