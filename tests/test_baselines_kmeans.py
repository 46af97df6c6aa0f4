"""Tests of compressai_hqa.baselines.kmeans and zoo/tools/kmeans_baseline.py."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from conftest import ROOT

from compressai_hqa.baselines.clustering import (
    _update,
    assign,
    kmeans_plusplus,
    run_kmeans,
)
from compressai_hqa.baselines.kmeans import (
    KMeansCodec,
    _from_tiles,
    _to_tiles,
    code_grid,
    fit_kmeans,
)
from compressai_hqa.eval_model.data import EvalImages
from compressai_hqa.eval_model.evaluate import EvalOptions, evaluate

REFERENCE = ROOT / "zoo" / "results" / "kmeans" / "mnist-test-first1000.json"


def _blobs(n: int = 300, dim: int = 6, seed: int = 0) -> torch.Tensor:
    """Points around 5 well-separated centres, plus noise."""
    return _labelled_blobs(n, dim, seed)[0]


def _labelled_blobs(
    n: int = 300, dim: int = 6, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(5, dim, generator=g)
    labels = torch.randint(5, (n,), generator=g)
    return centres[labels] + torch.randn(n, dim, generator=g), labels


def _images(n: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g)


def _script():
    spec = importlib.util.spec_from_file_location(
        "kmeans_baseline", ROOT / "zoo" / "tools" / "kmeans_baseline.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ k-means
def test_assign_finds_the_nearest_centroid_with_small_chunks() -> None:
    x, c = _blobs(50), _blobs(7, seed=1)
    index, dist = assign(x, c, chunk_size=8)
    brute = torch.cdist(x.double(), c.double()).pow(2)
    assert torch.equal(index, brute.argmin(1))
    assert torch.allclose(dist, brute.min(1).values, atol=1e-9)
    # batched: P problems at once give each problem's own answer
    batched, _ = assign(torch.stack([x, x.flip(0)]), torch.stack([c, c]))
    assert torch.equal(batched[0], index) and torch.equal(batched[1], index.flip(0))


def test_kmeans_plusplus_seeds_on_distinct_data_points() -> None:
    x, labels = _labelled_blobs(200)
    centroids = kmeans_plusplus(x, 5, torch.Generator().manual_seed(0))
    assert centroids.dtype == torch.float64 and centroids.shape == (5, 6)
    rows = [int((x.double() == c).all(1).nonzero()[0]) for c in centroids]
    # D² sampling on well-separated blobs puts one seed in each blob
    assert sorted(labels[rows].tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="num_centroids"):
        kmeans_plusplus(x[:3], 5, torch.Generator())


def test_lloyd_decreases_the_objective_to_a_fixed_point() -> None:
    x = _blobs(400, dim=4)
    result = run_kmeans(x, 8, max_iter=200, seed=1)
    history = torch.tensor(result.history)
    assert len(history) == result.iterations + 1 and result.iterations >= 2
    assert (history[1:] <= history[:-1] * (1 + 1e-12)).all()
    assert history[-1] < history[0]
    assert result.converged
    # the returned assignments are the nearest centroids, and the objective theirs
    index, dist = assign(x, result.centroids)
    assert torch.equal(index, result.assignments)
    assert dist.mean().item() / x.shape[1] == pytest.approx(result.history[-1])
    # converged: every centroid is the mean of its points
    for k in range(8):
        members = x[result.assignments == k].double()
        assert torch.allclose(result.centroids[k], members.mean(0), atol=1e-12)


def test_tol_and_max_iter_stop_early() -> None:
    x = _blobs(400, dim=4)
    capped = run_kmeans(x, 8, max_iter=1, seed=1)
    assert capped.iterations == 1 and len(capped.history) == 2
    seeded_only = run_kmeans(x, 8, max_iter=0, seed=1)
    assert seeded_only.iterations == 0 and not seeded_only.converged
    loose = run_kmeans(x, 8, max_iter=200, tol=0.5, seed=1)
    assert loose.converged and loose.iterations <= 2


def test_an_empty_centroid_moves_onto_the_farthest_point() -> None:
    x = torch.tensor([[0.0], [1.0], [10.0]], dtype=torch.float64).unsqueeze(0)
    index = torch.zeros(1, 3, dtype=torch.long)  # centroid 1 has no point
    dist = torch.tensor([[1.0, 0.0, 81.0]], dtype=torch.float64)
    centroids = _update(x, index, dist, 2)
    assert centroids[0, 0].item() == pytest.approx(11 / 3)
    assert centroids[0, 1].item() == 10.0


def test_a_fixed_seed_reproduces_the_fit() -> None:
    x = _blobs(300)
    a = run_kmeans(x, 6, seed=3)
    b = run_kmeans(x, 6, seed=3, chunk_size=7)
    assert torch.equal(a.assignments, b.assignments)
    assert torch.allclose(a.centroids, b.centroids, rtol=0, atol=1e-12)
    assert a.history == pytest.approx(b.history, rel=1e-12)
    other = kmeans_plusplus(x, 6, torch.Generator().manual_seed(4))
    assert not torch.equal(
        other, kmeans_plusplus(x, 6, torch.Generator().manual_seed(3))
    )


# ---------------------------------------------------------------- the codec
def test_the_product_code_grid_matches_hqa_layers() -> None:
    assert [code_grid(b) for b in (8, 32, 128, 512, 2048)] == [
        (1, 1), (2, 2), (4, 4), (8, 8), (16, 16),
    ]  # fmt: skip
    for bad in (0, 12, 16, 64):
        with pytest.raises(ValueError, match="square number"):
            code_grid(bad)
    with pytest.raises(ValueError, match="does not tile"):
        code_grid(72, (32, 32))  # 3x3 codes on 32x32


def test_tiles_are_the_grid_cells_in_row_major_order() -> None:
    x = torch.rand(3, 2, 8, 12)
    tiles = _to_tiles(x, (2, 3))
    assert tiles.shape == (6, 3, 2 * 4 * 4)
    assert torch.equal(tiles[4], x[:, :, 4:8, 4:8].flatten(1))  # row 1, column 1
    assert torch.equal(_from_tiles(tiles, (2, 3), (2, 8, 12)), x)


@pytest.mark.parametrize(("bits", "codes"), [(8, 1), (32, 4)])
def test_8_bits_is_one_code_and_32_bits_four(bits: int, codes: int) -> None:
    images = _images(260, size=32)
    codec, result = fit_kmeans(images, bits, max_iter=1)
    side = int(codes**0.5)
    assert codec.grid == (side, side) and codec.bits == bits
    assert codec.centroids.shape == (codes, 256, 1024 // codes)
    assert result.centroids.shape == (codes, 256, 1024 // codes)
    indices = codec.encode(images[:5])
    assert indices.shape == (5, side, side) and int(indices.max()) < 256


def test_every_decoded_tile_is_its_nearest_centroid() -> None:
    images = _images(100)
    codec, result = fit_kmeans(images, 8, code_bits=2, max_iter=10, seed=0)
    assert codec.grid == (2, 2) and codec.codebook_size == 4  # 4 codes of 2 bits
    x_hat = codec(images)["x_hat"]
    tiles, decoded = _to_tiles(images, codec.grid), _to_tiles(x_hat, codec.grid)
    centroids = codec.centroids.double()
    for p in range(4):
        brute = torch.cdist(tiles[p].double(), centroids[p]).pow(2)
        nearest = centroids[p][brute.argmin(1)].float()
        assert torch.equal(decoded[p], nearest)
    # on the training images, the codes are the fit's final assignments
    assert torch.equal(codec.encode(images).flatten(1).T, result.assignments)


def test_codec_checks_shapes_and_round_trips_codes() -> None:
    codec, _ = fit_kmeans(_images(50), 8, code_bits=2, max_iter=3)
    with pytest.raises(ValueError, match="expected images"):
        codec.encode(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="centroids must be"):
        KMeansCodec(torch.rand(3, 4, 16), (2, 2), (1, 8, 8))
    indices = torch.randint(4, (6, 2, 2))
    assert torch.equal(codec.encode(codec.decode(indices)), indices)


def test_the_evaluation_counts_exactly_the_codec_bits() -> None:
    images = _images(40)
    codec, _ = fit_kmeans(images, 8, code_bits=2, max_iter=3)
    data = EvalImages("toy", images, tuple(map(str, range(40))))
    options = EvalOptions(entropy_estimation=True, batch_size=16)
    result = evaluate(codec, data, options)
    assert result.metrics["bits"] == codec.bits == 8
    expected = (codec(images)["x_hat"] - images).pow(2).mean().item()
    assert result.metrics["mse"] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- the script
def test_the_script_gives_one_line_errors(tmp_path, capsys, mnist_root) -> None:
    script = _script()
    with pytest.raises(SystemExit, match="MNIST not found"):
        script.main(["--data-root", str(tmp_path), "--rfid-n", "0"])
    with pytest.raises(SystemExit) as bad_bits:
        script.main(["--data-root", str(tmp_path), "--bits", "16"])
    assert bad_bits.value.code == 2
    assert "--bits 16: 16 bits is not a square number" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--train-images 60000 >"):
        script.main(
            [
                "--data-root",
                str(mnist_root),
                "--holdout",
                "0",
                "--train-images",
                "60000",
            ]
        )
    with pytest.raises(SystemExit, match="--holdout 5000 leaves no training image"):
        script.main(["--data-root", str(mnist_root)])  # the subset: 5,000 digits


def test_the_baseline_reproduces_its_numbers_on_the_first_1000_test_digits(
    full_data_root,
) -> None:
    """The committed run (10,000 training digits, 20 Lloyd iterations), refitted:
    MSE to 1e-5, class error to 0.1 point. Needs the full training split."""
    reference = json.loads(REFERENCE.read_text())
    assert reference["num_images"] == 1000 and reference["dataset"] == "mnist-test"
    bits = sorted(reference["rates"], key=int)
    assert bits == ["8", "32", "128"]
    result = _script().main(
        [
            "--data-root", str(full_data_root), "--bits", *bits,
            "--train-images", str(reference["train_images"]),
            "--holdout", str(reference["holdout"]), "--seed", str(reference["seed"]),
            "--max-iter", str(reference["max_iter"]), "--tol", str(reference["tol"]),
            "--num-images", "1000", "--rfid-n", "0",
        ]
    )  # fmt: skip
    for b in bits:
        got, expected = result["rates"][b], reference["rates"][b]
        assert got["grid"] == expected["grid"] and got["bits"] == int(b)
        assert got["iterations"] == expected["iterations"], b
        assert got["train_mse"] == pytest.approx(expected["train_mse"], abs=1e-6), b
        assert got["mse"] == pytest.approx(expected["mse"], abs=1e-5), b
        assert abs(got["class_error"] - expected["class_error"]) <= 0.001 + 1e-9, b
    # more bits, less distortion
    mse = [result["rates"][b]["mse"] for b in bits]
    assert mse == sorted(mse, reverse=True)
