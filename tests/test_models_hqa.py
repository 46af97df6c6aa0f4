"""Tests of compressai_hqa.models.hqa.HQA: the stack as a CompressAI model."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from conftest import tiny_config

from compressai_hqa import HQA, CorruptStreamError, Decoding
from compressai_hqa.configs import MNIST
from compressai_hqa.entropy_models import quantize_frequencies


def smooth_images(batch: int, channels: int, size: int) -> torch.Tensor:
    """Images with structure an autoencoder can learn (unlike uniform noise)."""
    coarse = torch.rand(batch, channels, 4, 4)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")


def _trained_statistics(model: HQA, size: int = 32, steps: int = 3) -> HQA:
    """Gives every normaliser real statistics (a fresh stack is the identity)."""
    for layer in range(1, model.num_layers + 1):
        stack = model.truncate(layer).train()
        for _ in range(steps):
            stack.top(
                stack.layer_input(torch.rand(4, model.config.in_channels, size, size))
            )
    return model.eval()


@pytest.fixture(scope="module")
def stacks() -> dict[int, HQA]:
    torch.manual_seed(0)
    return {
        c: _trained_statistics(HQA(tiny_config(in_channels=c, num_layers=3)))
        for c in (1, 3)
    }


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("layer", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("size", [(37, 29), (32, 32), (5, 3)])
def test_compress_decompress_is_bit_exact_with_decode(
    stacks: dict[int, HQA], channels: int, layer: int, batch: int, size: tuple[int, int]
) -> None:
    model = stacks[channels].truncate(layer)
    x = torch.rand(batch, channels, *size)
    with torch.no_grad():
        out = model.compress(x)
        rec = model.decompress(out["strings"], out["shape"])["x_hat"]
        indices = model.quantize(x)
        direct = model.decode(indices, size=size)
    assert tuple(out["shape"]) == size
    assert len(out["strings"]) == 1 and len(out["strings"][0]) == batch
    assert rec.shape == x.shape and torch.equal(rec, direct)
    assert rec.min() >= 0 and rec.max() <= 1

    h, w = model.latent_shape(*size)
    f = 2**layer
    assert (
        indices.shape
        == (batch, h, w)
        == (batch, math.ceil(size[0] / f), math.ceil(size[1] / f))
    )
    n, k = h * w, model.config.layers[layer - 1].codebook_size
    for s in out["strings"][0]:
        assert len(s) <= 1.001 * n * math.log2(k) / 8 + 8
    assert model.bits(*size) == n * math.log2(k)

    # CompressAI's entropy-estimation bpp is the ideal rate n log2 K / (H W).
    with torch.no_grad():
        lik = model(x)["likelihoods"]["codes"]
    bpp = (torch.log(lik).sum() / (-math.log(2) * batch * size[0] * size[1])).item()
    assert bpp == pytest.approx(n * math.log2(k) / (size[0] * size[1]), rel=1e-6)


def test_mnist_stack_rates_and_eight_bit_codes() -> None:
    model = HQA("mnist").eval()
    assert sum(p.numel() for p in model.parameters()) == 569_145  # ~0.57 M (Table 10)
    x = torch.rand(3, 1, 32, 32)
    for layer, bits in zip(range(1, 6), (2048, 512, 128, 32, 8), strict=True):
        stack = model.truncate(layer)
        assert stack.bits(32, 32) == bits
        with torch.no_grad():
            out = stack.compress(x)
            rec = stack.decompress(out["strings"], out["shape"])["x_hat"]
        assert torch.equal(rec, stack.decode(stack.quantize(x), size=(32, 32)))
        assert all(len(s) <= bits / 8 * 1.001 + 8 for s in out["strings"][0])


def test_decoding_modes(stacks: dict[int, HQA]) -> None:
    model = stacks[1]
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        idx = model.quantize(x)
        assert torch.equal(
            model.decode(idx), model.decode(idx)
        )  # argmin: deterministic
        a = model.decode(idx, Decoding("sample", seed=1))
        b = model.decode(idx, Decoding("sample", seed=1))
        c = model.decode(idx, Decoding("sample", seed=2))
        assert torch.equal(a, b) and not torch.equal(a, c)
        avg = model.decode(idx, Decoding("average", num_samples=4, seed=1))
        g = Decoding("sample", seed=1).bound()
        manual = sum(model.decode(idx, g) for _ in range(4)) / 4
        assert torch.allclose(avg, manual)
        out = model.compress(x)
        sampled = model.decompress(
            out["strings"], out["shape"], decoding=Decoding("sample", seed=1)
        )["x_hat"]
        assert torch.equal(sampled, a)
    with pytest.raises(ValueError, match="mode"):
        model.decode(idx, "mean")


def test_sampling_the_top_code_draws_from_its_posterior() -> None:
    """Algorithm 3 in full: the top code is a draw from q(k | z_e)."""
    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=2, codebook_size=4, codebook_dim=2)).eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        z_e = model.encode(x)[:, :, :1, :1]  # one top position
        # four codes around z_e at squared distances 0.1, 0.5, 1, 2: a spread q
        directions = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        radii = torch.tensor([0.1, 0.5, 1.0, 2.0]).sqrt().unsqueeze(1)
        model.top.quantizer.codebook.copy_(z_e.flatten() + directions * radii)
        q = model.top.quantizer.posterior(z_e).flatten().double()
        batch = x.expand(4000, 1, 32, 32)
        draws = model.quantize(batch, Decoding("sample", seed=0))[:, 0, 0]
        freq = torch.bincount(draws, minlength=4).double() / len(draws)
        assert torch.allclose(freq, q, atol=0.03), (freq, q)
        assert model.quantize(x)[0, 0, 0] == 0  # argmin: the nearest code
        # reconstruct(sample_top=True) decodes a drawn top code with the same draws
        top = model.reconstruct(x, Decoding("sample", seed=3), sample_top=True)
        g = Decoding("sample", seed=3).bound()
        manual = model.decode(model.quantize(x, g), g, size=(32, 32))
        assert torch.equal(top, manual)
        assert torch.equal(
            model.reconstruct(x), model.decode(model.quantize(x), size=(32, 32))
        )


def test_greedy_training_leaves_lower_layers_untouched() -> None:
    torch.manual_seed(0)
    model = _trained_statistics(HQA(tiny_config(num_layers=3, dropout=0.3)))
    before = copy.deepcopy(model.state_dict())
    model.train()  # must not put frozen layers back in training mode (defect 1)
    assert model.top.training
    assert not any(m.training for layer in model.layers[:-1] for m in layer.modules())
    optimizer = torch.optim.RAdam(model.top.parameters(), lr=1e-2)
    for _ in range(25):  # crosses a code-reset window
        out = model.top(model.layer_input(torch.rand(8, 1, 32, 32)))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith(("layers.0.", "layers.1.")):
            assert torch.equal(value, after[key]), key
    changed = [
        k
        for k in before
        if k.startswith("layers.2.") and not torch.equal(before[k], after[k])
    ]
    assert any("normalizer" in k for k in changed) and any(
        "encoder" in k for k in changed
    )


def test_layer_loss_decreases_and_combines_terms() -> None:
    torch.manual_seed(0)
    model = HQA(tiny_config(num_layers=1, codebook_size=32))
    model.train()
    x = smooth_images(16, 1, 32)
    optimizer = torch.optim.Adam(model.top.parameters(), lr=4e-3)
    losses = []
    for _ in range(60):
        out = model.top(model.layer_input(x))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0]
    cfg = model.top.training_settings  # the default recipe's (Table 10)
    assert (cfg.beta_entropy, cfg.beta_commit) == (1e-3, 1e-3)
    ratio = (16 * 16) / (1 * 32 * 32)
    expected = out.recon + ratio * (
        cfg.beta_entropy * out.kl + cfg.beta_commit * out.commit
    )
    assert torch.allclose(out.loss, expected)


def test_state_dict_round_trips_with_weights_only(stacks: dict[int, HQA]) -> None:
    model = stacks[3]
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    rebuilt = HQA.from_state_dict(state).eval()
    assert rebuilt.config == model.config and rebuilt.num_layers == 3
    x = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(rebuilt(x)["x_hat"], model(x)["x_hat"])
    truncated = HQA.from_state_dict(model.truncate(2).state_dict())
    assert truncated.num_layers == 2
    cut = HQA.from_state_dict(state, num_layers=2)  # fewer layers than stored
    assert cut.num_layers == 2
    with torch.no_grad():
        assert torch.equal(cut.eval()(x)["x_hat"], model.truncate(2)(x)["x_hat"])
    grown = HQA.from_state_dict(model.truncate(2).state_dict(), num_layers=3)
    assert grown.num_layers == 3
    assert torch.equal(
        grown.layers[1].encoder.net[0].weight, model.layers[1].encoder.net[0].weight
    )
    with pytest.raises(ValueError, match="not an HQA state dict"):
        HQA.from_state_dict({k: v for k, v in state.items() if k != "_extra_state"})
    with pytest.raises(ValueError, match="differs"):
        HQA(tiny_config(in_channels=3, num_layers=3, hidden=4)).load_state_dict(state)


def test_truncate_shares_modules_and_crops(stacks: dict[int, HQA]) -> None:
    model = stacks[1]
    state = torch.get_rng_state()
    low = model.truncate(1)
    assert torch.equal(torch.get_rng_state(), state)  # resumed training relies on it
    assert low.layers[0] is model.layers[0] and low.downsampling == 2
    assert low.entropy_coder.codebook_size == 16
    assert not low.training and model.train().truncate(2).training
    # truncating a stack in training mode leaves the shared layers' modes alone
    assert [m.training for m in model.layers] == [False, False, True]
    model.truncate(1)
    model.truncate(3)
    assert [m.training for m in model.layers] == [False, False, True]
    model.eval()
    with pytest.raises(ValueError, match="num_layers"):
        model.truncate(4)


def test_compressai_plumbing(stacks: dict[int, HQA]) -> None:
    model = stacks[1]
    aux = model.aux_loss()
    assert isinstance(aux, torch.Tensor) and aux.item() == 0
    before = copy.deepcopy(model.state_dict())
    assert model.update(force=True) is False
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(
        torch.equal(v, after[k]) for k, v in before.items() if k != "_extra_state"
    )
    assert before["_extra_state"] == after["_extra_state"]


def test_bad_inputs_are_refused(stacks: dict[int, HQA]) -> None:
    model = stacks[1]
    with pytest.raises(ValueError, match="expects images"):
        model.compress(torch.rand(1, 3, 32, 32))
    with pytest.raises(TypeError, match="floating point"):
        model.compress(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="multiples"):
        model.layer_input(torch.rand(1, 1, 30, 30))
    with pytest.raises(ValueError, match="strings"):
        model.decompress([[b""], [b""]], (32, 32))
    with pytest.raises(ValueError, match="num_layers"):
        HQA(MNIST, num_layers=6)


def test_compress_rejects_what_it_cannot_code(stacks: dict[int, HQA]) -> None:
    model = stacks[1]
    for bad, words in [
        (torch.rand(0, 1, 32, 32), "empty"),
        (torch.rand(1, 1, 0, 32), "empty"),
        (torch.full((1, 1, 8, 8), float("nan")), "NaN"),
        (torch.full((2, 1, 8, 8), float("inf")), "NaN or infinite"),
        (torch.rand(1, 1, 32), "expects images"),
    ]:
        with pytest.raises(ValueError, match=words):
            model.compress(bad)
    with pytest.raises(TypeError, match="floating point"):
        model.compress(torch.zeros(1, 1, 8, 8, dtype=torch.int64))
    x = torch.rand(2, 1, 9, 7, dtype=torch.float64)  # converted to the model's dtype
    with torch.no_grad():
        out = model.compress(x)
        assert out["strings"] == model.compress(x.float())["strings"]


def test_decompress_validates_streams_and_shapes(stacks: dict[int, HQA]) -> None:
    model = stacks[1].truncate(2)
    with torch.no_grad():
        out = model.compress(torch.rand(1, 1, 16, 16))
    (stream,) = out["strings"][0]
    assert len(stream) == model.entropy_coder.stream_length(16)
    for strings, shape in [
        ([[stream]], (32, 32)),  # inflated shape: 64 codes from a 16-code stream
        ([[stream + bytes(4)]], (16, 16)),  # trailing bytes
        ([[stream[:-4]]], (16, 16)),
        ([[bytes(len(stream))]], (16, 16)),  # zeros of the right length
        ([[stream]], (-16, 16)),  # a negative shape
        ([[stream]], (16,)),
        ([[stream]], ("16", 16)),
        ([[stream]], (2**15, 2**15)),  # 2^30 pixels
        ([[]], (16, 16)),  # no image
        ([stream], (16, 16)),
        ("strings", (16, 16)),
    ]:
        with pytest.raises(CorruptStreamError):
            model.decompress(strings, shape)
    with torch.no_grad():
        assert model.decompress([[stream]], (16, 16))["x_hat"].shape == (1, 1, 16, 16)


def test_learned_priors_travel_in_the_state_dict(stacks: dict[int, HQA]) -> None:
    model = copy.deepcopy(stacks[1])
    freqs = quantize_frequencies(range(16))
    model.set_code_prior(2, freqs)
    assert model.truncate(2).coder("learned").frequencies == freqs
    with pytest.raises(ValueError, match="no learned prior for layer 3"):
        model.coder("learned")
    with pytest.raises(ValueError, match="prior must be"):
        model.coder("laplace")
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert HQA.from_state_dict(state).code_priors == {2: freqs}
    assert HQA.from_state_dict(state, num_layers=1).code_priors == {}
    with pytest.raises(ValueError, match="16 codes"):
        model.set_code_prior(1, quantize_frequencies(range(8)))
    model.set_code_prior(2, None)
    assert model.code_priors == {}
    # tensors untouched: old checkpoints without priors load as before
    assert "code_priors" not in model.state_dict()["_extra_state"]
