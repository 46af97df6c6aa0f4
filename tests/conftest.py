"""Shared fixtures: small configs and the location of the reference data."""

from __future__ import annotations

import os

from pathlib import Path

import pytest
import torch

from compressai_hqa.configs import HQAConfig, LayerConfig

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("HQA_DATA_ROOT", ROOT.parent / "shared" / "data"))


def tiny_config(
    in_channels: int = 1,
    num_layers: int = 3,
    codebook_size: int = 16,
    codebook_dim: int = 8,
    hidden: int = 8,
    **layer_kwargs,
) -> HQAConfig:
    """A small stack with the structure of the paper's, fast on CPU."""
    return HQAConfig(
        name="tiny",
        in_channels=in_channels,
        image_size=32,
        layers=tuple(
            LayerConfig(
                enc_hidden=hidden,
                dec_hidden=hidden,
                codebook_size=codebook_size,
                codebook_dim=codebook_dim,
                **layer_kwargs,
            )
            for _ in range(num_layers)
        ),
    )


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
