"""Nearest and second-nearest neighbours in pixel space, with exact decisions and no full pass.

A projection onto an orthonormal basis never lengthens a vector, so for the PCA basis U and the
residual r = x - mean - U U^T (x - mean) of each vector,

    ||x - y||^2  >=  ||U^T (x - y)||^2 + (||r_x|| - ||r_y||)^2,

a lower bound computed as one small matmul on (k + 1)-dim coordinates (the residual norm is the
last coordinate). ``search`` re-ranks the ``candidates`` smallest bounds of each query with exact
pixel distances and returns the two best with ``bound``: every other reference vector is at
least that far. A caller's yes/no question ("is d1 < 0.4 d2?") is then settled exactly from
these numbers for almost every query; ``refine`` searches the rest exhaustively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Squared-distance slack for float32 rounding in the expanded matmul form (pixels in [0, 1]).
_BOUND_SLACK = 1e-3


@dataclass
class Index:
    """Reference vectors [N, D] float32 and their lower-bound coordinates [N, k + 1]."""

    vectors: torch.Tensor
    mean: torch.Tensor
    basis: torch.Tensor
    coords: torch.Tensor
    coords_sq: torch.Tensor
    norms_sq: torch.Tensor

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def project(self, queries: torch.Tensor) -> torch.Tensor:
        centred = queries - self.mean
        proj = centred @ self.basis
        residual = (centred.square().sum(1) - proj.square().sum(1)).clamp_min(0).sqrt()
        return torch.cat([proj, residual[:, None]], dim=1)


@dataclass
class Candidates:
    """Per query: the two nearest found (exact distances, reference rows) and a lower bound.

    ``d1 <= d2`` are true distances to reference rows ``i1``, ``i2``. Every reference vector
    other than the re-ranked candidates is at least ``bound`` away, so the true nearest
    distance lies in [min(d1, bound), d1] and the true second in [min(d2, bound), d2].
    ``exact`` marks queries whose two are certainly the true two nearest.
    """

    d1: np.ndarray
    d2: np.ndarray
    i1: np.ndarray
    i2: np.ndarray
    bound: np.ndarray

    @property
    def exact(self) -> np.ndarray:
        return self.d2 <= self.bound

    @property
    def ratio(self) -> np.ndarray:
        """d1 / d2 (0 when both are 0: a copy of a vector the reference holds twice)."""
        return np.where(self.d2 > 0, self.d1 / np.maximum(self.d2, 1e-12), 0.0)


def as_vectors(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images [N, ...] -> float32 [N, D] in [0, 1]."""
    array = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
    return array.reshape(array.shape[0], -1).to(torch.float32).div_(255.0)


def build_index(vectors: torch.Tensor, dims: int = 32, sample: int = 20000, seed: int = 0) -> Index:
    vectors = vectors.contiguous()
    n, d = vectors.shape
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=generator)[: min(n, sample)]
    subset = vectors[rows].double()
    mean = subset.mean(0)
    cov = (subset - mean).T @ (subset - mean) / max(1, len(subset) - 1)
    _, eigvecs = torch.linalg.eigh(cov)
    basis = eigvecs[:, -min(dims, d) :].flip(1).float().contiguous()
    empty = torch.empty(0)
    index = Index(vectors, mean.float(), basis, empty, empty, vectors.square().sum(1))
    index.coords = torch.cat([index.project(vectors[s : s + 8192]) for s in range(0, n, 8192)])
    index.coords_sq = index.coords.square().sum(1)
    return index


def _exact_sq(index: Index, queries: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Squared distances [n, c] of each query to its own reference rows [n, c].

    Expanded as |y|^2 - 2 q.y + |q|^2 (one batched matmul); the rounding error is ~1e-6 of
    |q|^2 (an identical pair comes out at d ~ 0.01 rather than 0), far below the gaps the
    ratio test and the duplicate threshold look at.
    """
    dots = torch.bmm(index.vectors[rows], queries[:, :, None])[..., 0]
    sq = index.norms_sq[rows] - 2 * dots + queries.square().sum(1)[:, None]
    return sq.clamp_min(0)


def search(
    index: Index, queries: torch.Tensor, candidates: int = 32, chunk: int = 1024
) -> Candidates:
    """Two nearest among each query's ``candidates`` best bounds, plus the bound for the rest."""
    n = queries.shape[0]
    out = Candidates(
        np.zeros(n, np.float32),
        np.zeros(n, np.float32),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.full(n, np.inf, np.float32),
    )
    take = min(candidates + 1, len(index))
    for start in range(0, n, chunk):
        rows = slice(start, start + min(chunk, n - start))
        q = queries[rows].contiguous()
        qc = index.project(q)
        bound = qc.square().sum(1)[:, None] + index.coords_sq[None, :] - 2 * (qc @ index.coords.T)
        bound_val, cand = torch.topk(bound, take, dim=1, largest=False)
        keep = cand[:, :candidates]
        exact = _exact_sq(index, q, keep)
        best, order = torch.topk(exact, min(2, keep.shape[1]), dim=1, largest=False)
        idx = keep.gather(1, order)
        out.d1[rows] = best[:, 0].sqrt().numpy()
        out.d2[rows] = best[:, -1].sqrt().numpy()
        out.i1[rows] = idx[:, 0].numpy()
        out.i2[rows] = idx[:, -1].numpy()
        if take > candidates:
            out.bound[rows] = (bound_val[:, -1] - _BOUND_SLACK).clamp_min(0).sqrt().numpy()
    return out


def refine(index: Index, queries: torch.Tensor, found: Candidates, rows, chunk: int = 256) -> None:
    """Exact two nearest of the given query rows over every reference vector (in place)."""
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        q = queries[torch.from_numpy(part)]
        approx = index.norms_sq[None, :] - 2 * (q @ index.vectors.T)
        keep = torch.topk(approx, min(16, len(index)), dim=1, largest=False).indices
        exact = _exact_sq(index, q, keep)
        best, order = torch.topk(exact, min(2, keep.shape[1]), dim=1, largest=False)
        idx = keep.gather(1, order)
        found.d1[part] = best[:, 0].sqrt().numpy()
        found.d2[part] = best[:, -1].sqrt().numpy()
        found.i1[part] = idx[:, 0].numpy()
        found.i2[part] = idx[:, -1].numpy()
        found.bound[part] = np.inf


def ratio_below(found: Candidates, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(below, settled): whether d1 < threshold * d2, and whether the numbers decide it."""
    low_d1 = np.minimum(found.d1, found.bound)
    low_d2 = np.minimum(found.d2, found.bound)
    surely = found.d1 < threshold * low_d2
    surely_not = low_d1 >= threshold * found.d2
    return surely, surely | surely_not


def nearest_two(
    index: Index, queries: torch.Tensor, threshold: float | None = None, candidates: int = 32
) -> tuple[Candidates, int]:
    """Candidates whose ratio decision (d1 < threshold d2) is exact, or fully exact when
    ``threshold`` is None; with the number of queries that needed an exhaustive search."""
    found = search(index, queries, candidates)
    if threshold is None:
        unsettled = np.nonzero(~found.exact)[0]
    else:
        _, settled = ratio_below(found, threshold)
        unsettled = np.nonzero(~settled)[0]
    refine(index, queries, found, unsettled)
    return found, len(unsettled)
