"""The exact Gram engine: G = U Uᵀ from int8 blocks, bit-identical on every machine.

Within one block of B ≤ 1024 values in [−127, 127], every partial sum of a dot product is an
integer below 1024·127² < 2²⁴, so a float32 GEMM over that block is exact whatever order
BLAS sums in. Each block Gram is then scaled by s_b,i·s_b,j (exact in float64) and added
into a float64 accumulator in a fixed block order: one rounding per product and per add, in
an order we choose, hence deterministic. Memory: O(n² + n·chunk), never the full U.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from threadpoolctl import ThreadpoolController

from market.aggregator.rules.base import ChunkSource
from market.errors import AggregationError

MAX_EXACT_BLOCK = 1024

# visit(first_column, q_chunk int8 (n, c), scales_chunk float32 (n, blocks))
ChunkVisitor = Callable[[int, np.ndarray, np.ndarray], None]


def block_grams(q: np.ndarray, block_size: int) -> np.ndarray:
    """Integer-exact Grams of every block of a chunk: float32 array (blocks, n, n)."""
    if block_size > MAX_EXACT_BLOCK:
        raise AggregationError(
            f"block_size {block_size} exceeds {MAX_EXACT_BLOCK}: float32 Gram not exact"
        )
    n, cols = q.shape
    blocks = -(-cols // block_size)
    pad = blocks * block_size - cols
    x = q.astype(np.float32)
    if pad:
        x = np.pad(x, ((0, 0), (0, pad)))
    x = x.reshape(n, blocks, block_size).transpose(1, 0, 2)
    return np.matmul(x, x.transpose(0, 2, 1))


def gram(source: ChunkSource, visit: ChunkVisitor | None = None) -> np.ndarray:
    """The exact float64 Gram matrix (n, n) in one streaming pass over ``source``.

    ``visit(first_column, q, scales)`` is called on each raw chunk in column order, so
    coordinate-wise rules and sketches ride the same pass. BLAS runs single-threaded here
    (``MARKET_GRAM_THREADS`` overrides): the per-block GEMMs are small, and on a shared
    machine oversubscribed BLAS threads were measured 50× slower than one thread.
    """
    n = source.n
    g = np.zeros((n, n), dtype=np.float64)
    with _controller().limit(limits=gram_threads(), user_api="blas"):
        for col, q, s in source.chunks():
            grams = block_grams(q, source.block_size)
            s64 = s.astype(np.float64)
            for b in range(grams.shape[0]):
                g += grams[b].astype(np.float64) * np.outer(s64[:, b], s64[:, b])
            if visit is not None:
                visit(col, q, s)
    return g


_CONTROLLER: list[ThreadpoolController] = []


def _controller() -> ThreadpoolController:
    """One controller per process: building it scans the loaded libraries (milliseconds)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def gram_threads() -> int:
    """BLAS threads for the Gram pass (default 1; see :func:`gram`)."""
    return max(1, int(os.environ.get("MARKET_GRAM_THREADS", "1")))


def distances_from_gram(g: np.ndarray) -> np.ndarray:
    """Squared pairwise distances ‖u_i − u_j‖² = G_ii + G_jj − 2G_ij, clipped at 0."""
    diag = np.diag(g)
    d2 = diag[:, None] + diag[None, :] - 2.0 * g
    np.fill_diagonal(d2, 0.0)
    return np.maximum(d2, 0.0)


def cosines_from_gram(g: np.ndarray, eps: float = 1e-30) -> np.ndarray:
    """Cosine similarities; a zero update has cosine 0 with everything (1 with itself)."""
    norms = np.sqrt(np.maximum(np.diag(g), 0.0))
    denom = np.outer(norms, norms)
    cos = np.where(denom > eps, g / np.where(denom > eps, denom, 1.0), 0.0)
    np.fill_diagonal(cos, 1.0)
    return np.clip(cos, -1.0, 1.0)
