"""Nearest and second-nearest neighbours in pixel space, with exact decisions and no full pass.

A projection onto an orthonormal basis never lengthens a vector, so for the PCA basis U and the
residual r = x - mean - U U^T (x - mean) of each vector,

    ||x - y||^2  >=  ||U^T (x - y)||^2 + (||r_x|| - ||r_y||)^2,

a lower bound that is one small matmul on (k + 1)-dim coordinates (the residual norm is the
last coordinate); with two more columns ([c, |c|^2, 1] against [-2c', 1, |c'|^2]) the matmul
writes the bound itself, into a buffer reused across chunks.

``search`` takes each query's ``candidates`` smallest bounds, measures the first few exactly and
asks the caller's ``radius`` (from the two best exact distances c1 <= c2) how far out every
reference vector must be measured to settle the caller's question; only the candidates whose
bound is within that radius are measured too (a handful: the bound is tight). It returns the
two best with ``bound``: every reference vector not measured is at least that far. The
question ("is d1 < 0.4 d2?", "is d1 < 1.0?") is then settled exactly from these numbers for
almost every query; ``refine`` searches the rest exhaustively.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# Squared-distance slack for float32 rounding of the expanded bound (pixels in [0, 1]): an
# absolute part, and a relative part on the squared norms the expansion subtracts.
_BOUND_SLACK = 1e-3
_BOUND_SLACK_REL = 1e-5
_FIRST = 4  # candidates measured exactly for every query (c1, c2 come from these)
# Reference rows converted, normed or projected at once: ~6 MB float32 temporaries for MNIST (a
# few live at once); 8192 rows took the build of an MNIST index past a 768 MB container's limit.
_ROWS = 2048
_BUFFER_VALUES = 1 << 24  # float32 bounds computed at once: queries per chunk x reference rows

Radius = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Index:
    """Reference vectors [N, D] (kept as their uint8 pixels: a quarter of float32's memory,
    the same float32 values on the way out), their lower-bound coordinates [N, k + 1] and the
    bound table [k + 3, N] (see the module doc)."""

    codes: torch.Tensor
    mean: torch.Tensor
    basis: torch.Tensor
    coords: torch.Tensor
    norms_sq: torch.Tensor
    table: torch.Tensor
    coords_sq_max: float

    def __len__(self) -> int:
        return self.codes.shape[0]

    def rows(self, which) -> torch.Tensor:
        """Reference vectors of the given rows (any index shape), float32 as as_vectors gives."""
        return self.codes[which].to(torch.float32).div_(255.0)

    @property
    def vectors(self) -> torch.Tensor:
        """All reference vectors, float32 [N, D] (made on each call)."""
        return self.rows(slice(None))

    def project(self, queries: torch.Tensor) -> torch.Tensor:
        centred = queries - self.mean
        proj = centred @ self.basis
        residual = (centred.square().sum(1) - proj.square().sum(1)).clamp_min(0).sqrt()
        return torch.cat([proj, residual[:, None]], dim=1)

    def with_vectors(self, vectors: torch.Tensor) -> Index:
        """An index of other reference vectors on this one's basis (no new PCA)."""
        return _make(vectors, self.mean, self.basis)


@dataclass
class Candidates:
    """Per query: the two nearest found (exact distances, reference rows) and a lower bound.

    ``d1 <= d2`` are true distances to reference rows ``i1``, ``i2``. Every reference vector
    not measured is at least ``bound`` away, so the true nearest distance lies in
    [min(d1, bound), d1] and the true second in [min(d2, bound), d2].
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


def _make(vectors: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> Index:
    """``vectors``: float32 [N, D] pixels / 255 (as_vectors) or their uint8 pixels [N, D], which
    the index then holds as they are (the caller's tensor, not a copy)."""
    vectors = vectors.contiguous()
    n = vectors.shape[0]
    empty = torch.empty(0)
    pixels = vectors.dtype == torch.uint8
    codes = vectors if pixels else torch.empty(vectors.shape, dtype=torch.uint8)
    index = Index(codes, mean, basis, empty, empty, empty, 0.0)
    norms_sq, coords = [], []
    for s in range(0, n, _ROWS):  # in chunks: no N x D temporaries beside the caller's vectors
        part = _floats(vectors[s : s + _ROWS])
        if not pixels:
            rounded = part.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
            if not torch.equal(rounded.to(torch.float32).div_(255.0), part):
                raise ValueError("reference vectors must be uint8 pixels / 255 (as_vectors)")
            index.codes[s : s + _ROWS] = rounded
        norms_sq.append(part.square().sum(1))
        coords.append(index.project(part))
    index.norms_sq = torch.cat(norms_sq)
    index.coords = torch.cat(coords)
    coords_sq = index.coords.square().sum(1)
    index.table = torch.cat([-2 * index.coords, torch.ones(n, 1), coords_sq[:, None]], 1).T.contiguous()
    index.coords_sq_max = float(coords_sq.max()) if n else 0.0
    return index


def _floats(vectors: torch.Tensor) -> torch.Tensor:
    return vectors.to(torch.float32).div_(255.0) if vectors.dtype == torch.uint8 else vectors


def build_index(vectors: torch.Tensor, dims: int = 32, sample: int = 8192, seed: int = 0) -> Index:
    """An index of float32 pixels / 255 [N, D] or of uint8 pixels [N, D] (the same index, without
    an N x D float32 copy: 188 MB for the 60,000 MNIST digits)."""
    vectors = vectors.contiguous()
    n, d = vectors.shape
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n, generator=generator)[: min(n, sample)]
    subset = _floats(vectors[rows])  # a copy (rows is an index tensor): centred in place
    # numpy sums in float64 through a small cast buffer; torch's sum(dtype=float64) and
    # .double() both make a float64 copy of the sample first (125 MB for MNIST)
    mean = torch.from_numpy(subset.numpy().sum(0, dtype=np.float64) / len(subset))
    basis = _principal_directions(subset.sub_(mean.float()), min(dims, d), generator)
    del subset  # 100 MB for face thumbnails: freed before _make's pieces are allocated
    return _make(vectors, mean.float(), basis)


def _principal_directions(centred: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """An orthonormal [D, k] basis of the leading principal directions, by randomized subspace
    iteration (Halko, Martinsson & Tropp 2011): a few [n, D] x [D, k + 8] products instead of the
    D x D covariance and its eigendecomposition, which took 20 s (D = 784) and 2-4 minutes
    (D = 3072, face thumbnails) on a loaded 2-core CPU. Any orthonormal basis gives a valid
    bound; the leading directions only make it tight. Orthonormalised in float64 at the end.
    """
    width = min(k + 8, centred.shape[1])
    q = torch.randn(centred.shape[1], width, generator=generator)
    for _ in range(4):
        q, _ = torch.linalg.qr(centred.T @ (centred @ q))
    _, _, vh = torch.linalg.svd(centred @ q, full_matrices=False)
    directions = (q.double() @ vh.T.double())[:, :k]
    return torch.linalg.qr(directions)[0].float().contiguous()


def _exact_sq(index: Index, queries: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Squared distances [n, c] of each query to its own reference rows [n, c].

    Expanded as |y|^2 - 2 q.y + |q|^2 (one batched matmul); the rounding error is ~1e-6 of
    |q|^2 (an identical pair comes out at d ~ 0.01 rather than 0), far below the gaps the
    ratio test and the duplicate threshold look at.
    """
    dots = torch.bmm(index.rows(rows), queries[:, :, None])[..., 0]
    sq = index.norms_sq[rows] - 2 * dots + queries.square().sum(1)[:, None]
    return sq.clamp_min(0)


def _bounds(index: Index, q: torch.Tensor, out: torch.Tensor | None = None):
    """Squared-distance lower bounds [m, N] of queries q [m, D] to every reference vector (the
    module doc's one matmul, into ``out`` when given) and each query's float32 slack [m]."""
    qc = index.project(q)
    qc_sq = qc.square().sum(1)
    bound = torch.matmul(torch.cat([qc, qc_sq[:, None], torch.ones(len(q), 1)], 1), index.table, out=out)
    return bound, _BOUND_SLACK + _BOUND_SLACK_REL * (qc_sq + index.coords_sq_max)


def search(
    index: Index,
    queries: torch.Tensor,
    radius: Radius,
    candidates: int = 32,
    chunk: int = 1024,
    exclude_self: bool = False,
) -> Candidates:
    """Two nearest of each query among the reference vectors measured; see the module doc.

    ``radius(c1, c2)`` gives, per query, the distance within which every reference vector is
    measured exactly (c1 <= c2: the two best of the first candidates). With ``exclude_self``
    the queries are the reference vectors themselves and row i never counts as query i's
    neighbour (identical other rows still do).
    """
    n, total = queries.shape[0], len(index)
    out = Candidates(
        np.full(n, np.inf, np.float32),
        np.full(n, np.inf, np.float32),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.full(n, np.inf, np.float32),
    )
    take = min(candidates, total)
    if n == 0 or take == 0:
        return out
    first = min(_FIRST, take)
    chunk = max(1, min(chunk, _BUFFER_VALUES // total))  # the bound buffer stays ~64 MB
    buffer = torch.empty(min(chunk, n), total)
    for start in range(0, n, chunk):
        rows = slice(start, start + min(chunk, n - start))
        q = queries[rows].contiguous()
        m = q.shape[0]
        bound, slack = _bounds(index, q, buffer[:m])
        if exclude_self:
            bound[torch.arange(m), torch.arange(start, start + m)] = torch.inf
        vals, cand = torch.topk(bound, take, dim=1, largest=False)

        exact = torch.full((m, take), torch.inf)
        head = _exact_sq(index, q, cand[:, :first])
        exact[:, :first] = torch.where(vals[:, :first].isfinite(), head, torch.inf)
        c = torch.topk(exact[:, :first], min(2, first), dim=1, largest=False).values.sqrt()
        reach = radius(c[:, 0], c[:, -1]).square() + slack
        measured = vals.isfinite()
        measured[:, first:] &= vals[:, first:] < reach[:, None]
        qi, pos = torch.nonzero(measured[:, first:], as_tuple=True)
        # A loose bound (face thumbnails: 32 of 3072 dimensions) can leave a few hundred
        # candidates per query to measure: in pieces of ~16 MB each, not one [pairs, D] block.
        step = max(1, _BUFFER_VALUES // (4 * q.shape[1]))
        for s in range(0, len(qi), step):
            pair_q, pair_c = qi[s : s + step], cand[qi[s : s + step], pos[s : s + step] + first]
            exact[pair_q, pos[s : s + step] + first] = (index.rows(pair_c) - q[pair_q]).square_().sum(1)

        best, order = torch.topk(exact, min(2, take), dim=1, largest=False)
        idx = cand.gather(1, order)
        out.d1[rows] = best[:, 0].sqrt().numpy()
        out.d2[rows] = best[:, -1].sqrt().numpy()  # one reference vector: d2 = d1
        out.i1[rows] = idx[:, 0].numpy()
        out.i2[rows] = idx[:, -1].numpy()
        rest = torch.where(measured, torch.inf, vals).min(1).values
        if take < total:
            rest = torch.minimum(rest, vals[:, -1])
        out.bound[rows] = (rest - slack).clamp_min(0).sqrt().numpy()
    return out


def nearest_rows(index: Index, queries: torch.Tensor, k: int, pool: int = 4, chunk: int = 1024) -> torch.Tensor:
    """Rows [n, k] of each query's k nearest reference vectors, nearest first: measured among
    the ``pool * k`` smallest lower bounds and, for a query whose k-th distance reaches past
    the last of them, among every row whose bound is within that distance."""
    total = len(index)
    k, take = min(k, total), min(pool * k, total)
    out = torch.zeros(queries.shape[0], k, dtype=torch.int64)
    chunk = max(1, min(chunk, _BUFFER_VALUES // max(total, 1)))
    for start in range(0, queries.shape[0], chunk):
        q = queries[start : start + chunk].contiguous()
        bound, slack = _bounds(index, q)
        vals, cand = torch.topk(bound, take, dim=1, largest=False)
        exact, order = torch.topk(_exact_sq(index, q, cand), k, dim=1, largest=False)
        rows = cand.gather(1, order)
        reach = exact[:, -1] + slack
        if take < total:
            for i in torch.nonzero(vals[:, -1] <= reach)[:, 0].tolist():  # a few in a hundred
                near = torch.nonzero(bound[i] <= reach[i])[:, 0]
                d = (index.rows(near) - q[i]).square_().sum(1)
                rows[i] = near[torch.topk(d, k, largest=False).indices]
        out[start : start + len(q)] = rows
    return out


def refine(
    index: Index,
    queries: torch.Tensor,
    found: Candidates,
    rows,
    chunk: int = 256,
    exclude_self: bool = False,
) -> None:
    """Exact two nearest of the given query rows over every reference vector (in place)."""
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        q = queries[torch.from_numpy(part)]
        approx = index.norms_sq[None, :] - 2 * torch.cat(
            [q @ index.rows(slice(s, s + _ROWS)).T for s in range(0, len(index), _ROWS)], 1
        )
        if exclude_self:
            approx[torch.arange(len(part)), torch.from_numpy(part)] = torch.inf
        keep = torch.topk(approx, min(16, len(index)), dim=1, largest=False).indices
        exact = _exact_sq(index, q, keep)
        if exclude_self:
            exact[keep == torch.from_numpy(part)[:, None]] = torch.inf
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


def ratio_radius(threshold: float) -> Radius:
    """How far to measure so that "d1 < threshold * d2" is settled.

    Not a copy by the first candidates (c1 >= t c2): every vector within t c2 is measured, so
    the nearest is at least t c2 >= t d2 away unless one of those is nearer. A copy
    (c1 < t c2): within c2, so that d1 <= c1 < t * bound and d2 is (almost always) exact too,
    for the ratio shown to the TA.
    """

    def radius(c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        return torch.where(c1 >= threshold * c2, threshold * c2, c2)

    return radius


def exact_radius(c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """Every vector within c2 measured: the two found are the true two nearest."""
    return c2


def nearest_two(
    index: Index, queries: torch.Tensor, threshold: float | None = None, candidates: int = 32
) -> tuple[Candidates, int]:
    """Candidates whose ratio decision (d1 < threshold d2) is exact, or fully exact when
    ``threshold`` is None; with the number of queries that needed an exhaustive search."""
    radius = exact_radius if threshold is None else ratio_radius(threshold)
    found = search(index, queries, radius, candidates)
    if threshold is None:
        unsettled = np.nonzero(~found.exact)[0]
    else:
        _, settled = ratio_below(found, threshold)
        unsettled = np.nonzero(~settled)[0]
    refine(index, queries, found, unsettled)
    return found, len(unsettled)


def nearest_other_within(
    index: Index, distance: float, candidates: int = 32
) -> tuple[Candidates, int]:
    """Each reference vector's nearest other one (``d1``), exact whenever it is < ``distance``
    or decides that it is not; with the number of rows searched exhaustively."""
    radius: Radius = lambda c1, c2: torch.full_like(c1, distance)
    vectors = index.vectors
    found = search(index, vectors, radius, candidates, exclude_self=True)
    unsettled = np.nonzero((found.d1 >= distance) & (found.bound < distance))[0]
    refine(index, vectors, found, unsettled, exclude_self=True)
    return found, len(unsettled)
