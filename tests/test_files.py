"""Tests of compressai_hqa.files: atomic writes, digests, verified loading, cache."""

from __future__ import annotations

import hashlib
import os

from pathlib import Path

import pytest
import torch

from compressai_hqa.files import (
    atomic_save,
    atomic_write,
    cache_dir,
    check_digest,
    file_digest,
    load_torch_file,
    new_file_mode,
)


def test_atomic_write_replaces_the_file_or_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "data.bin"
    atomic_write(path, b"first")
    assert path.read_bytes() == b"first"
    assert path.stat().st_mode & 0o777 == new_file_mode()  # not mkstemp's 0o600
    atomic_write(path, lambda f: f.write(b"second"))
    assert path.read_bytes() == b"second"

    def fails(f) -> None:
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fails)
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == ["data.bin"]  # no temporary file left


def test_atomic_save_round_trips_with_weights_only(tmp_path: Path) -> None:
    state = {"w": torch.arange(4.0), "step": 3}
    atomic_save(state, tmp_path / "state.pth")
    loaded = load_torch_file(tmp_path / "state.pth")
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 3


def test_digests(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"hqa" * 1000)
    assert file_digest(path) == hashlib.sha256(b"hqa" * 1000).hexdigest()
    assert file_digest(path, "sha1") == hashlib.sha1(b"hqa" * 1000).hexdigest()
    check_digest(path, file_digest(path))
    with pytest.raises(RuntimeError, match="corrupt or not the released file"):
        check_digest(path, "0" * 64)


def test_load_torch_file_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_torch_file(tmp_path / "missing.pth")
    path = tmp_path / "state.pth"
    torch.save({"w": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="corrupt"):
        load_torch_file(path, sha256="0" * 64)
    assert torch.equal(load_torch_file(path, file_digest(path))["w"], torch.ones(3))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot read checkpoint") as err:
        load_torch_file(path)
    assert "\n" not in str(err.value)

    torch.save({"code": Path("x")}, path)  # pickled objects, not plain values
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_torch_file(path)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COMPRESSAI_HQA_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("COMPRESSAI_HQA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "compressai_hqa"


def test_a_file_that_is_not_a_pytorch_file_is_named_so(tmp_path: Path) -> None:
    text = tmp_path / "weights.txt"
    text.write_text("a text file\n")
    with pytest.raises(ValueError, match=r"weights.txt: not a PyTorch file"):
        load_torch_file(text)
