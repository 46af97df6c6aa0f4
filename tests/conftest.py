"""Shared fixtures: small configs and the location of the reference data."""

from __future__ import annotations

import os
import socket

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


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails any test that opens an Internet (IPv4/IPv6) connection."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"network access is disabled in the tests: {address}")

    def guarded_connect(self: socket.socket, address: object) -> None:
        check(self, address)
        return connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        check(self, address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
