"""k-means on pixels: the fixed-rate floor beside HQA (the model card's floor).

At 8 bits per image the codec is plain k-means: 256 centroids fitted on the
training images' pixels (32x32 = 1024 values), each image decoded to its nearest
centroid. Up to k-means' local optimum this is the MSE-optimal fixed-rate 8-bit
code.

2^b centroids on whole images are impossible at the other rates (b = 32, 128,
...), so there the codec is a **product code on HQA's code grid at that rate**:
the image is cut into a g x g grid of tiles, g = sqrt(b / 8), and every tile gets
its own 8-bit code (256 centroids). On 32x32 MNIST:

==========  ==========  ==============  ====================
bits        grid        tile            HQA layer, same grid
==========  ==========  ==============  ====================
8           1 x 1       32 x 32         5
32          2 x 2       16 x 16         4
128         4 x 4       8 x 8           3
512         8 x 8       4 x 4           2
2048        16 x 16     2 x 2           1
==========  ==========  ==============  ====================

Each tile *position* has its own 256 centroids, fitted by k-means on that
position's tiles of the training images (not shared across positions: every code
is plain k-means on the pixels it covers). An image costs g * g codes of 8 bits,
exactly b bits, as many codes in the same layout as HQA's layer at that rate
(HQA's codes see overlapping receptive fields; these tiles do not overlap).

The centroids are fitted by :func:`compressai_hqa.baselines.clustering.kmeans`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from torch import Tensor

from .clustering import KMeansResult, assign, run_kmeans

__all__ = ["KMeansCodec", "code_grid", "fit_kmeans"]


def code_grid(
    bits: int, size: tuple[int, int] = (32, 32), code_bits: int = 8
) -> tuple[int, int]:
    """The g x g grid of ``code_bits``-bit codes that spends ``bits`` per image.

    ``bits / code_bits`` codes must be a square number g * g whose g divides the
    image's height and width: 8 -> (1, 1), 32 -> (2, 2), 128 -> (4, 4) at 8 bits a
    code, the code grids of HQA's MNIST layers 5, 4 and 3.

    Raises:
        ValueError: no such grid.
    """
    if code_bits < 1:
        raise ValueError(f"code_bits must be >= 1, got {code_bits}")
    codes, rest = divmod(bits, code_bits)
    side = math.isqrt(codes) if codes > 0 else 0
    if rest or side == 0 or side * side != codes:
        raise ValueError(
            f"{bits} bits is not a square number of {code_bits}-bit codes "
            f"(e.g. {', '.join(str(code_bits * 4**i) for i in range(4))})"
        )
    if size[0] % side or size[1] % side:
        raise ValueError(
            f"a {side}x{side} code grid ({bits} bits) does not tile "
            f"{size[0]}x{size[1]} images"
        )
    return side, side


def _to_tiles(x: Tensor, grid: tuple[int, int]) -> Tensor:
    """Images (B, C, H, W) -> tiles (gh * gw, B, C * th * tw), positions row-major."""
    b, c, h, w = x.shape
    gh, gw = grid
    tiles = x.reshape(b, c, gh, h // gh, gw, w // gw).permute(2, 4, 0, 1, 3, 5)
    return tiles.reshape(gh * gw, b, -1)


def _from_tiles(
    tiles: Tensor, grid: tuple[int, int], shape: tuple[int, int, int]
) -> Tensor:
    """Inverse of :func:`_to_tiles`."""
    c, h, w = shape
    gh, gw = grid
    x = tiles.reshape(gh, gw, -1, c, h // gh, w // gw).permute(2, 3, 0, 4, 1, 5)
    return x.reshape(-1, c, h, w)


class KMeansCodec(nn.Module):
    """Fixed-rate codec: one k-means code of log2 K bits per tile of a grid.

    The centroids are a frozen ``nn.Parameter`` (so
    :func:`compressai_hqa.eval_model.evaluate` finds the device), stored as
    float32; images are encoded with float64 distances. :meth:`forward` returns
    CompressAI's ``{"x_hat", "likelihoods"}``: with a uniform 1/K per code, the
    evaluation's entropy estimation counts exactly :attr:`bits` per image.

    Args:
        centroids: (P, K, C * th * tw), P = gh * gw tile positions in row-major
            order, each tile's pixels flattened in (C, th, tw) order.
        grid: (gh, gw) tiles per image.
        image_shape: (C, H, W) of the images.
    """

    def __init__(
        self,
        centroids: Tensor,
        grid: tuple[int, int],
        image_shape: tuple[int, int, int],
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        gh, gw = grid
        if height % gh or width % gw:
            raise ValueError(f"grid {grid} does not tile images {image_shape}")
        dim = channels * (height // gh) * (width // gw)
        if centroids.dim() != 3 or (centroids.shape[0], centroids.shape[2]) != (
            gh * gw,
            dim,
        ):
            raise ValueError(
                f"centroids must be ({gh * gw}, K, {dim}) for grid {grid} and "
                f"images {image_shape}, got {tuple(centroids.shape)}"
            )
        self.grid = (gh, gw)
        self.image_shape = (channels, height, width)
        self.centroids = nn.Parameter(
            centroids.detach().to(torch.float32).clone(), requires_grad=False
        )

    @property
    def codebook_size(self) -> int:
        """K: centroids per tile position."""
        return self.centroids.shape[1]

    @property
    def bits(self) -> float:
        """Bits per image: gh * gw * log2 K."""
        return self.centroids.shape[0] * math.log2(self.codebook_size)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"expected images (B, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}"
            )

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Codes (B, gh, gw), int64: the nearest centroid of every tile."""
        self._check(x)
        tiles = _to_tiles(x.to(self.centroids.device), self.grid)
        index, _ = assign(tiles, self.centroids)
        return index.T.reshape(-1, *self.grid).to(x.device)

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Images (B, C, H, W), float32: each tile its code's centroid."""
        positions = self.centroids.shape[0]
        flat = indices.reshape(-1, positions).T.to(self.centroids.device)
        rows = torch.arange(positions, device=flat.device).unsqueeze(1)
        return _from_tiles(self.centroids[rows, flat], self.grid, self.image_shape)

    def forward(self, x: Tensor) -> dict[str, Tensor | dict[str, Tensor]]:
        """``{"x_hat": decode(encode(x)), "likelihoods": {"codes": 1/K each}}``."""
        indices = self.encode(x)
        likelihoods = torch.full(
            (len(x), 1, *self.grid), 1.0 / self.codebook_size, device=x.device
        )
        return {"x_hat": self.decode(indices), "likelihoods": {"codes": likelihoods}}


def fit_kmeans(
    images: Tensor,
    bits: int = 8,
    *,
    code_bits: int = 8,
    max_iter: int = 100,
    tol: float = 0.0,
    seed: int = 0,
    chunk_size: int | None = None,
    progress: bool = False,
) -> tuple[KMeansCodec, KMeansResult]:
    """Fits a :class:`KMeansCodec` of ``bits`` per image on training images.

    Args:
        images: (N, C, H, W) training images.
        bits: bits per image: ``code_bits`` (one code for the whole image) or a
            square number of codes times that (a product code, see
            :func:`code_grid`).
        code_bits: bits per code: 2^code_bits centroids per tile position.
        max_iter, tol, seed, chunk_size, progress: see :func:`run_kmeans`.

    Returns:
        the codec (on the CPU) and the fit (centroids (P, K, D), history, ...).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    grid = code_grid(bits, tuple(images.shape[-2:]), code_bits)
    result = run_kmeans(
        _to_tiles(images.cpu(), grid),
        2**code_bits,
        max_iter=max_iter,
        tol=tol,
        seed=seed,
        chunk_size=chunk_size,
        progress=progress,
    )
    codec = KMeansCodec(result.centroids, grid, tuple(images.shape[1:]))
    return codec, result
