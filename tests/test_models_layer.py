"""HQALayer: the loss scaling switch keeps the posterior stochastic."""

from __future__ import annotations

import pytest
import torch

from compressai_hqa.configs import LayerConfig
from compressai_hqa.models.layer import HQALayer

#: Mean posterior entropy (bits, of at most 4) the toy layer keeps with
#: per-position scaling; with the original scaling it ends near 1.4 bits.
ENTROPY_FLOOR_BITS = 1.8


def _clustered_batches(seed: int = 0):
    """8-channel 4x4 inputs drawn around 12 centres: a layer-2-like input."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(12, 8, generator=g) * 2

    def batch(n: int) -> torch.Tensor:
        which = torch.randint(0, 12, (n, 4, 4), generator=g)
        x = centres[which].permute(0, 3, 1, 2)
        return x + 0.3 * torch.randn(x.shape, generator=g)

    return batch


def _trained_posterior_entropy(scaling: str, steps: int = 400) -> float:
    torch.manual_seed(0)
    config = LayerConfig(
        enc_hidden=16,
        dec_hidden=16,
        codebook_size=16,
        codebook_dim=4,
        beta_entropy=0.01,
        beta_commit=0.01,
    )
    layer = HQALayer(8, config, bottom=False, loss_scaling=scaling)
    optimizer = torch.optim.Adam(layer.parameters(), 4e-3)
    batch = _clustered_batches()
    for step in range(steps):
        layer.quantizer.temperature.fill_(max(0.66 * (1 - step / steps), 0.05))
        loss = layer(batch(32)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    layer.eval()
    with torch.no_grad():
        q = layer.quantizer.posterior(layer.encode(batch(256)))
    return float(-(q * q.clamp_min(1e-30).log2()).sum(-1).mean())


def test_per_position_scaling_keeps_the_posterior_stochastic() -> None:
    torch.set_num_threads(1)
    position = _trained_posterior_entropy("position")
    original = _trained_posterior_entropy("original")
    assert position > ENTROPY_FLOOR_BITS > original, (position, original)


def test_loss_scaling_weights_the_regularisers() -> None:
    config = LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4)
    x = torch.randn(2, 8, 8, 8)
    out = {}
    for scaling in ("original", "position"):
        torch.manual_seed(0)
        layer = HQALayer(8, config, bottom=False, loss_scaling=scaling).eval()
        with torch.no_grad():
            out[scaling] = layer(x)
    reg = {k: float(o.loss - o.recon) for k, o in out.items()}
    # 4x4 latent positions per 8x8x8 target: the original code's factor is 1/32
    assert reg["original"] == pytest.approx(reg["position"] / 32, rel=1e-3)
    expected = 1e-3 * out["position"].kl + 1e-3 * out["position"].commit
    assert reg["position"] == pytest.approx(float(expected), rel=1e-3)
    with pytest.raises(ValueError, match="loss_scaling"):
        HQALayer(8, config, bottom=False, loss_scaling="pixel")


def test_the_layer_carries_the_codec_interface() -> None:
    torch.manual_seed(0)
    config = LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4)
    layer = HQALayer(8, config, bottom=False).eval()
    x = torch.randn(2, 8, 8, 8)
    z_e = layer.encode(x)
    quantizer = layer.quantizer
    assert layer.codebook_size == 16 and layer.codebook is quantizer.codebook
    assert torch.equal(layer.logits(z_e), quantizer.logits(z_e))
    codes = layer.quantize(z_e)
    assert torch.equal(codes, layer(x).indices)  # eval mode: the argmin codes
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(
        layer.quantize(z_e, "sample", g1), quantizer.quantize(z_e, "sample", g2)
    )
    assert torch.equal(layer.embed(codes), quantizer.embed(codes))
    assert layer.decode(layer.embed(codes)).shape == x.shape
    with pytest.raises(ValueError, match="mode"):
        layer.quantize(z_e, "average")


def test_schedule_setters_drive_the_quantizer() -> None:
    config = LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4)
    layer = HQALayer(8, config, bottom=False, temperature=0.66).train()
    buffer = layer.quantizer.temperature
    layer.set_temperature(0.25)
    assert layer.quantizer.temperature is buffer  # in place: the state-dict buffer
    assert layer.temperature == 0.25 and layer.state_dict()["quantizer.temperature"]
    assert layer.quantizer.code_reset
    layer.set_code_reset(False)
    assert not layer.quantizer.code_reset
    layer.set_code_reset(True)
    assert layer.quantizer.code_reset
    assert layer.codes_used() == 0
    layer(torch.randn(4, 8, 8, 8))
    used = layer.quantizer.usage
    assert 0 < layer.codes_used() == int((used > 0).sum())
    assert layer.reset_mask is layer.quantizer.reset_mask
    # the state-dict names are a checkpoint format
    assert {k for k in layer.state_dict() if k.startswith("quantizer.")} == {
        "quantizer.codebook",
        "quantizer.temperature",
        "quantizer.usage",
        "quantizer.window_step",
    }
