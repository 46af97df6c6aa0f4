"""k-means clustering of many problems at once: k-means++ seeding, Lloyd iterations.

:func:`run_kmeans`: k-means++ seeding (D² sampling; D. Arthur and S.
Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007) from a
seeded CPU generator, then Lloyd iterations until no assignment changes, the
relative decrease of the objective falls to ``tol``, or ``max_iter``. Distances
are float64, ``||x||² - 2 x·c + ||c||²`` by batched matrix products over chunks
of points; a centroid left without points moves onto the point farthest from its
centroid. P problems (the tile positions of
:class:`~compressai_hqa.baselines.KMeansCodec`) are fitted at once, each
independently. With a fixed seed the fit is deterministic on the CPU.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch

from torch import Tensor

__all__ = ["KMeansResult", "assign", "kmeans_plusplus", "run_kmeans"]

# float64 values per chunk of the (positions, points, max(dim, K)) distance work.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class KMeansResult:
    """What :func:`run_kmeans` returns.

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
def run_kmeans(
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
