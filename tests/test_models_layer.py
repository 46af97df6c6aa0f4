"""HQALayer: the loss scaling switch, the codec interface and the Table 3 switches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from compressai_hqa.configs import LayerConfig
from compressai_hqa.decoding import Decoding
from compressai_hqa.layers import EMAQuantizer, LayerTraining
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
    config = LayerConfig(enc_hidden=16, dec_hidden=16, codebook_size=16, codebook_dim=4)
    training = LayerTraining(beta_entropy=0.01, beta_commit=0.01, loss_scaling=scaling)
    layer = HQALayer(8, config, bottom=False, training=training)
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


@pytest.mark.usefixtures("one_thread")
def test_per_position_scaling_keeps_the_posterior_stochastic() -> None:
    position = _trained_posterior_entropy("position")
    original = _trained_posterior_entropy("original")
    assert position > ENTROPY_FLOOR_BITS > original, (position, original)


def test_loss_scaling_weights_the_regularisers() -> None:
    config = LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4)
    x = torch.randn(2, 8, 8, 8)
    out = {}
    for scaling in ("original", "position"):
        torch.manual_seed(0)
        training = LayerTraining(loss_scaling=scaling)
        layer = HQALayer(8, config, bottom=False, training=training).eval()
        with torch.no_grad():
            out[scaling] = layer(x)
    reg = {k: float(o.loss - o.recon) for k, o in out.items()}
    # 4x4 latent positions per 8x8x8 target: the original code's factor is 1/32
    assert reg["original"] == pytest.approx(reg["position"] / 32, rel=1e-3)
    expected = 1e-3 * out["position"].kl + 1e-3 * out["position"].commit
    assert reg["position"] == pytest.approx(float(expected), rel=1e-3)
    with pytest.raises(ValueError, match="loss_scaling"):
        LayerTraining(loss_scaling="pixel")


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
    sample = Decoding("sample", seed=1)
    assert torch.equal(layer.quantize(z_e, sample), quantizer.quantize(z_e, sample))
    assert torch.equal(layer.embed(codes), quantizer.embed(codes))
    assert layer.decode(layer.embed(codes)).shape == x.shape
    with pytest.raises(ValueError, match="picks no codes"):
        layer.quantize(z_e, "average")


def test_schedule_setters_drive_the_quantizer() -> None:
    config = LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4)
    training = LayerTraining(temperature=0.66)
    layer = HQALayer(8, config, bottom=False, training=training).train()
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


def test_configure_training_switches_the_loss_and_the_reset_rule() -> None:
    config = LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4)
    layer = HQALayer(8, config, bottom=False)
    assert layer.loss_scaling == "original" and layer.quantizer.reset_rule == "paper"
    settings = LayerTraining(
        loss_scaling="position",
        reset_rule="data",
        reset_window=7,
        reset_threshold=0.1,
        reset_noise=0.5,
        reset_min_distance=2.0,
    )
    layer.configure_training(settings)
    q = layer.quantizer
    assert layer.loss_scaling == "position" and layer.training_settings is settings
    assert (q.reset_rule, q.reset_window, q.reset_threshold) == ("data", 7, 0.1)
    assert (q.reset_noise, q.reset_min_distance) == (0.5, 2.0)
    ema_config = LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=16,
                             codebook_dim=4, quantizer="ema")  # fmt: skip
    ema = HQALayer(8, ema_config, bottom=False)
    ema.configure_training(LayerTraining(ema_decay=0.9, reset_window=5))
    assert (ema.quantizer.decay, ema.quantizer.reset_window) == (0.9, 5)
    with pytest.raises(ValueError, match="ema_decay"):
        LayerTraining(ema_decay=1.0)


def test_a_cross_entropy_layer_predicts_the_lower_codes() -> None:
    """HAMs (paper C.2): the decoder's output is K_below logits per lower
    position, trained with cross-entropy against the given codes."""
    torch.manual_seed(0)
    config = LayerConfig(
        enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4, target="ce"
    )
    layer = HQALayer(8, config, bottom=False, lower_codes=32).eval()
    x = torch.randn(2, 8, 8, 8)
    codes = torch.randint(0, 32, (2, 8, 8))
    with torch.no_grad():
        out = layer(x, codes)
    assert out.reconstruction.shape == (2, 32, 8, 8) and torch.equal(out.target, codes)
    assert float(out.recon) == pytest.approx(
        float(F.cross_entropy(out.reconstruction, codes)), rel=1e-6
    )
    logits = layer.decode(layer.embed(out.indices))
    assert torch.equal(logits, out.reconstruction)  # no un-normalisation
    below = HQALayer(1, LayerConfig(enc_hidden=8, dec_hidden=8, codebook_size=32,
                                    codebook_dim=8), bottom=True)  # fmt: skip
    assert torch.equal(layer.codes_below(logits, below), logits.argmax(1))
    with pytest.raises(ValueError, match="lower codes"):
        layer(x)
    with pytest.raises(ValueError, match="lower_codes"):
        HQALayer(8, config, bottom=False)


def test_an_ema_layer_has_no_temperature_and_trains_by_straight_through() -> None:
    torch.manual_seed(0)
    config = LayerConfig(
        enc_hidden=8, dec_hidden=8, codebook_size=16, codebook_dim=4, quantizer="ema"
    )
    training = LayerTraining(
        beta_entropy=0.0, beta_commit=0.25, loss_scaling="position"
    )
    layer = HQALayer(8, config, bottom=False, training=training).train()
    assert isinstance(layer.quantizer, EMAQuantizer) and layer.reset_mask is None
    layer.set_temperature(0.5)  # no-ops on a deterministic quantiser
    layer.set_code_reset(True)
    assert layer.temperature == 0.0
    out = layer(torch.randn(4, 8, 8, 8))
    assert float(out.kl) == 0.0
    expected = out.recon + 0.25 * out.commit
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()))
    out.loss.backward()
    assert layer.encoder.net[0].weight.grad is not None  # through the codes
    assert not layer.codebook.requires_grad
    assert "quantizer.codebook" in layer.state_dict()
