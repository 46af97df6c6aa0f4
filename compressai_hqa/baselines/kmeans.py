"""k-means on pixels: the fixed-rate floor beside HQA (issue 9, part 6).

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

Fitting (:func:`kmeans`): k-means++ seeding (D² sampling; D. Arthur and S.
Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007) from a
seeded CPU generator, then Lloyd iterations until no assignment changes, the
relative decrease of the objective falls to ``tol``, or ``max_iter``. Distances
are float64, ``||x||² - 2 x·c + ||c||²`` by batched matrix products over chunks
of points; a centroid left without points moves onto the point farthest from its
centroid. All tile positions are fitted at once, each independently. With a fixed
seed the fit is deterministic on the CPU.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch
import torch.nn as nn

from torch import Tensor

__all__ = [
    "KMeansCodec",
    "KMeansResult",
    "assign",
    "code_grid",
    "fit_kmeans",
    "kmeans",
    "kmeans_plusplus",
]

# float64 values per chunk of the (positions, points, max(dim, K)) distance work.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class KMeansResult:
    """What :func:`kmeans` returns.

    Attributes:
        centroids: (K, D) float64, or (P, K, D) for P problems fitted together.
        assignments: index (N,) or (P, N) of each point's nearest centroid.
        history: the objective as a mean squared error per coordinate (over all
            problems), after k-means++ seeding and then after every Lloyd
            iteration; non-increasing.
        iterations: Lloyd iterations run.
        converged: whether the fit stopped before ``max_iter`` (no assignment
            changed, or the objective's relative decrease fell to ``tol``).
    """

    centroids: Tensor
    assignments: Tensor
    history: list[float]
    iterations: int
    converged: bool


def _batched(data: Tensor, name: str = "data") -> Tensor:
    if data.dim() == 2:
        return data.unsqueeze(0)
    if data.dim() != 3:
        raise ValueError(f"{name} must be (N, D) or (P, N, D), got {tuple(data.shape)}")
    return data


def _chunk(data: Tensor, num_centroids: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return chunk_size
    positions, _, dim = data.shape
    return max(1, _CHUNK_ELEMENTS // (positions * max(dim, num_centroids)))


@torch.no_grad()
def assign(
    data: Tensor, centroids: Tensor, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """The nearest centroid of every point, and the squared distance to it.

    Args:
        data: points (N, D), or (P, N, D) for P independent problems.
        centroids: (K, D), or (P, K, D) with data (P, N, D).
        chunk_size: points per batched distance computation (default: about 4 M
            float64 values per chunk).

    Returns:
        indices (N,) or (P, N), int64 (the first centroid on a tie), and squared
        distances of the same shape, float64.
    """
    x, c = _batched(data), _batched(centroids, "centroids").to(torch.float64)
    if x.shape[0] != c.shape[0] or x.shape[2] != c.shape[2]:
        raise ValueError(
            f"data {tuple(data.shape)} and centroids {tuple(centroids.shape)} "
            "do not match"
        )
    positions, count, _ = x.shape
    c_t = c.transpose(1, 2)
    c_norm = c.pow(2).sum(-1).unsqueeze(1)  # (P, 1, K)
    index = torch.empty(positions, count, dtype=torch.long, device=x.device)
    distance = torch.empty(positions, count, dtype=torch.float64, device=x.device)
    step = _chunk(x, c.shape[1], chunk_size)
    for start in range(0, count, step):
        part = x[:, start : start + step].to(torch.float64)
        scores = torch.baddbmm(c_norm, part, c_t, alpha=-2.0)  # (P, B, K)
        best, index[:, start : start + step] = scores.min(dim=-1)
        distance[:, start : start + step] = (best + part.pow(2).sum(-1)).clamp_min(0)
    if data.dim() == 2:
        return index[0], distance[0]
    return index, distance


@torch.no_grad()
def kmeans_plusplus(
    data: Tensor, num_centroids: int, generator: torch.Generator
) -> Tensor:
    """k-means++ seeding: the first centroid uniformly, then D² sampling.

    Args:
        data: points (N, D), or (P, N, D) for P independent problems.
        num_centroids: K <= N.
        generator: a CPU generator (the draws, hence the result, depend only on
            its state).

    Returns:
        centroids (K, D) or (P, K, D), float64, each one a data point.
    """
    x = _batched(data).to(torch.float64)
    positions, count, _ = x.shape
    if not 1 <= num_centroids <= count:
        raise ValueError(f"need 1 <= num_centroids <= {count} points: {num_centroids}")
    rows = torch.arange(positions)
    picks = torch.empty(positions, num_centroids, dtype=torch.long)
    picks[:, 0] = torch.randint(count, (positions,), generator=generator)
    x_norm = x.pow(2).sum(-1)  # (P, N)
    closest = torch.full((positions, count), math.inf, dtype=torch.float64)
    for k in range(num_centroids):
        if k:
            weights = closest.clone()
            weights[weights.sum(1) == 0] = 1.0  # only duplicates left: uniform
            picks[:, k] = torch.multinomial(weights, 1, generator=generator)[:, 0]
        centre = x[rows, picks[:, k]]  # (P, D)
        dist = x_norm - 2 * torch.bmm(x, centre.unsqueeze(-1))[..., 0]
        dist += centre.pow(2).sum(-1, keepdim=True)
        torch.minimum(closest, dist.clamp_min(0), out=closest)
    centroids = x[rows.unsqueeze(1), picks]
    return centroids if data.dim() == 3 else centroids[0]


def _update(x: Tensor, index: Tensor, distance: Tensor, num_centroids: int) -> Tensor:
    """Lloyd's update: each centroid to the mean of its points; an empty one onto
    the points farthest from their centroids (a distinct point each)."""
    positions, count, dim = x.shape
    flat = (index + torch.arange(positions).unsqueeze(1) * num_centroids).flatten()
    sums = torch.zeros(positions * num_centroids, dim, dtype=torch.float64)
    sums.index_add_(0, flat, x.reshape(positions * count, dim))
    counts = torch.bincount(flat, minlength=positions * num_centroids)
    counts = counts.view(positions, num_centroids)
    centroids = sums.view(positions, num_centroids, dim)
    centroids /= counts.clamp_min(1).unsqueeze(-1)
    for p in torch.nonzero((counts == 0).any(1)).flatten().tolist():
        empty = torch.nonzero(counts[p] == 0).flatten()
        order = torch.sort(distance[p], descending=True, stable=True).indices
        centroids[p, empty] = x[p, order[: len(empty)]]
    return centroids


@torch.no_grad()
def kmeans(
    data: Tensor,
    num_centroids: int,
    *,
    max_iter: int = 100,
    tol: float = 0.0,
    seed: int = 0,
    chunk_size: int | None = None,
    progress: bool = False,
) -> KMeansResult:
    """k-means++ then Lloyd iterations, deterministic on the CPU for a seed.

    Args:
        data: points (N, D), or (P, N, D) for P independent problems fitted
            together (one tile position each); copied to float64.
        num_centroids: K centroids per problem (K <= N).
        max_iter: at most this many Lloyd iterations.
        tol: stop once the objective's relative decrease in one iteration is at
            most ``tol`` (0: only when no assignment changes, or at ``max_iter``).
        seed: seed of the CPU generator of k-means++.
        chunk_size: points per batched distance computation (see :func:`assign`).
        progress: show a progress bar (one step per Lloyd iteration).
    """
    if max_iter < 0 or tol < 0:
        raise ValueError(f"need max_iter >= 0 and tol >= 0: {max_iter}, {tol}")
    x = _batched(data).to(torch.float64).contiguous()
    generator = torch.Generator().manual_seed(seed)
    centroids = kmeans_plusplus(x, num_centroids, generator)
    index, distance = assign(x, centroids, chunk_size)
    history = [distance.mean().item() / x.shape[2]]
    from tqdm import tqdm

    bar = tqdm(total=max_iter, unit="it", desc="k-means", disable=not progress)
    converged = False
    iterations = 0
    while iterations < max_iter and not converged:
        centroids = _update(x, index, distance, num_centroids)
        new_index, distance = assign(x, centroids, chunk_size)
        history.append(distance.mean().item() / x.shape[2])
        iterations += 1
        changed = int((new_index != index).sum())
        index = new_index
        converged = changed == 0 or history[-2] - history[-1] <= tol * history[-2]
        bar.set_postfix(mse=f"{history[-1]:.5f}", changed=changed)
        bar.update()
    bar.close()
    if data.dim() == 2:
        centroids, index = centroids[0], index[0]
    return KMeansResult(centroids, index, history, iterations, converged)


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
        max_iter, tol, seed, chunk_size, progress: see :func:`kmeans`.

    Returns:
        the codec (on the CPU) and the fit (centroids (P, K, D), history, ...).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    grid = code_grid(bits, tuple(images.shape[-2:]), code_bits)
    result = kmeans(
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
