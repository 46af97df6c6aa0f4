"""Tests of compressai_hqa.registration: HQA inside CompressAI's lookup tables."""

from __future__ import annotations

import os
import subprocess
import sys

import compressai.zoo
import compressai.zoo.image
import pytest

from compressai.registry import MODELS

import compressai_hqa

from compressai_hqa import HQA
from compressai_hqa.models import MnistHQA


def test_import_registers_everywhere_and_is_idempotent() -> None:
    names = ("hqa", "hqa-mnist", "hqa-celeba64")
    for _ in range(2):
        compressai_hqa.register()
        for name in names:
            assert name in compressai.zoo.image_models
            assert name in compressai.zoo.models
            cls = compressai.zoo.image.model_architectures[name]
            assert isinstance(cls, type) and issubclass(cls, HQA)
            assert MODELS[name] is cls  # classes, as CompressAI's register_model
    assert MODELS["hqa"] is HQA and MODELS["hqa-mnist"] is MnistHQA
    assert isinstance(MODELS["hqa-mnist"](), HQA)
    assert MODELS["hqa-celeba64"]().config.name == "celeba64"
    assert MODELS["hqa"]("mnist", num_layers=2).num_layers == 2
    assert MODELS["hqa-mnist"](num_layers=2).num_layers == 2
    with pytest.raises(ValueError, match="does not match"):
        MODELS["hqa-celeba64"]("mnist")


def test_named_architectures_refuse_weights_of_another_config() -> None:
    state = HQA("mnist", num_layers=2).state_dict()
    arch = compressai.zoo.image.model_architectures
    assert arch["hqa-mnist"].from_state_dict(state).num_layers == 2
    assert arch["hqa"].from_state_dict(state).config.name == "mnist"
    with pytest.raises(ValueError, match=r"'mnist'.*'celeba64'"):
        arch["hqa-celeba64"].from_state_dict(state)


def test_registration_on_plain_import_in_a_fresh_interpreter() -> None:
    code = (
        "import compressai_hqa, compressai.zoo as z;"
        "from compressai.utils.eval_model.__main__ import architectures;"
        "print('hqa-mnist' in z.image_models, 'hqa' in architectures)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True"]


def test_zoo_functions_have_compressai_signature() -> None:
    fn = compressai.zoo.image_models["hqa-mnist"]
    assert fn(quality=1, metric="mse", pretrained=False, progress=False).num_layers == 5
    assert fn(quality=5).num_layers == 1
    with pytest.raises(ValueError, match="mse"):
        fn(quality=1, metric="ms-ssim")
    generic = compressai.zoo.image_models["hqa"]
    assert generic(pretrained=False).num_layers == 5  # no quality: every layer
    assert generic(quality=2, pretrained=False, config="celeba64").num_layers == 6


REGISTRATION_STEPS = """
import importlib.util, sys, types
from pathlib import Path

import compressai.zoo, compressai.zoo.image
from compressai.registry import MODELS

TABLES = {
    "MODELS": MODELS,
    "image_models": compressai.zoo.image_models,
    "models": compressai.zoo.models,
    "model_architectures": compressai.zoo.image.model_architectures,
}

def hqa_in():
    return sorted(n for n, t in TABLES.items() if any(k.startswith("hqa") for k in t))

# the package's modules without its __init__ (which registers on purpose)
root = Path(importlib.util.find_spec("compressai_hqa").origin).parent
package = types.ModuleType("compressai_hqa")
package.__path__ = [str(root)]
sys.modules["compressai_hqa"] = package

import compressai_hqa.layers
print("layers", hqa_in())
import compressai_hqa.models
print("models", hqa_in())
import compressai_hqa.zoo
print("zoo", hqa_in())
import compressai_hqa.registration
compressai_hqa.registration.register()
print("register", hqa_in())
"""


def test_only_the_models_and_register_touch_compressai() -> None:
    """The layers register nothing; the model classes enter CompressAI's registry
    through ``register_model`` when defined; the zoo tables are filled by
    ``register()`` alone (which ``import compressai_hqa`` runs)."""
    # without the start-up hook, which registers on any import of CompressAI
    env = {**os.environ, "COMPRESSAI_HQA_AUTOREGISTER": "0"}
    out = subprocess.run(
        [sys.executable, "-c", REGISTRATION_STEPS],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert out.stdout.splitlines() == [
        "layers []",
        "models ['MODELS']",
        "zoo ['MODELS']",
        "register ['MODELS', 'image_models', 'model_architectures', 'models']",
    ]
