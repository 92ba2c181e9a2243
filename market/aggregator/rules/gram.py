"""The exact Gram engine: G = U Uᵀ from int8 blocks, bit-identical on every machine.

Within one block of B ≤ 1024 values in [−127, 127], every partial sum of a dot product is an
integer below 1024·127² < 2²⁴, so a float32 GEMM over that block is exact whatever order
BLAS sums in. Each block Gram is then scaled by s_b,i·s_b,j (exact in float64) and added
into a float64 accumulator in a fixed block order: one rounding per product and per add, in
an order we choose, hence deterministic. Memory: O(n² + n·chunk), never the full U.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from market.aggregator.rules.base import ChunkSource
from market.aggregator.rules.parallel import OrderedWork
from market.aggregator.rules.sketch import Sketcher, column_signs
from market.errors import AggregationError

MAX_EXACT_BLOCK = 1024
# Values per float32 sub-chunk: small enough that the converted blocks are still in cache
# when the GEMM and the sketches read them (2¹⁷: one block at n = 100, measured fastest).
SUB_VALUES = 1 << 17
# The norms pass does O(n) work per value, not O(n²): with pieces that small, handing them
# to threads cost more than the work (2 threads were slower than 1); 2²⁰ measured fastest.
NORMS_VALUES = 1 << 20

# visit(first_column, q_chunk int8 (n, c), scales_chunk float32 (n, blocks))
ChunkVisitor = Callable[[int, np.ndarray, np.ndarray], None]


def float_blocks(q: np.ndarray, block_size: int, signs: np.ndarray | None = None) -> np.ndarray:
    """A chunk's values as float32 blocks (blocks, n, B), zero-padded, times the column
    signs when given (int8 ±1 per column; |σ·q| ≤ 127 stays int8); exact either way."""
    if block_size > MAX_EXACT_BLOCK:
        raise AggregationError(
            f"block_size {block_size} exceeds {MAX_EXACT_BLOCK}: float32 Gram not exact"
        )
    if signs is not None:
        q = q * signs
    n, cols = q.shape
    blocks = -(-cols // block_size)
    full = cols // block_size
    x = np.empty((blocks, n, block_size), dtype=np.float32)
    x[:full] = q[:, : full * block_size].reshape(n, full, block_size).transpose(1, 0, 2)
    if full < blocks:
        rest = cols - full * block_size
        x[full, :, rest:] = 0.0
        x[full, :, :rest] = q[:, full * block_size :]
    return x


# (first block, int8 columns (n, c), their sketch signs or None, float64 scales (n, m))
Piece = tuple[int, np.ndarray, np.ndarray | None, np.ndarray]


def sub_chunks(
    col: int,
    q: np.ndarray,
    s: np.ndarray,
    block_size: int,
    signed: bool = False,
    values: int = SUB_VALUES,
) -> Iterator[Piece]:
    """A chunk cut into pieces of about ``values`` values, in column order, with the
    sketch signs of their columns if ``signed`` (see :func:`float_blocks`)."""
    b = block_size
    step = max(1, values // (q.shape[0] * b))
    signs = column_signs(col, col + q.shape[1]) if signed else None
    s64 = s.astype(np.float64)
    for k in range(0, s.shape[1], step):
        cols = slice(k * b, (k + step) * b)
        yield col // b + k, q[:, cols], None if signs is None else signs[cols], s64[:, k : k + step]


def _stream(
    source: ChunkSource,
    task: Callable[[Piece], Any],
    merge: Callable[[Any], None],
    visit: ChunkVisitor | None,
    signed: bool = False,
    values: int = SUB_VALUES,
) -> None:
    """One pass: ``task`` on every piece of about ``values`` values (worker threads),
    ``merge`` of the results in column order, ``visit`` on every raw chunk."""
    work = OrderedWork(merge)
    for col, q, s in source.chunks():
        for piece in sub_chunks(col, q, s, source.block_size, signed, values):
            work.submit(task, piece)
        if visit is not None:
            visit(col, q, s)
    work.drain()


def gram(
    source: ChunkSource,
    visit: ChunkVisitor | None = None,
    sketchers: Sequence[Sketcher] = (),
) -> np.ndarray:
    """The exact float64 Gram matrix (n, n) in one streaming pass over ``source``.

    ``visit(first_column, q, scales)`` is called on each raw chunk in column order, so
    coordinate-wise rules ride the same pass; ``sketchers`` get the float32 blocks the GEMM
    reads, multiplied by the sketch signs σ(j) (which leave UUᵀ unchanged). BLAS runs
    single-threaded here (``MARKET_GRAM_THREADS`` overrides): the per-block GEMMs are small,
    and on a shared machine oversubscribed BLAS threads were measured 50× slower than one.
    """
    n, b = source.n, source.block_size
    g = np.zeros((n, n), dtype=np.float64)

    def merge(done: tuple[int, np.ndarray, list[np.ndarray]]) -> None:
        first, grams, sketch_terms = done
        for term in grams:  # block order
            np.add(g, term, out=g)
        for sketcher, terms in zip(sketchers, sketch_terms, strict=True):
            sketcher.add_terms(first, terms)

    with _controller().limit(limits=gram_threads(), user_api="blas"):
        task = partial(_scaled_grams, block_size=b, sketchers=sketchers)
        _stream(source, task, merge, visit, signed=bool(sketchers))
    return g


def _scaled_grams(
    piece: Piece, block_size: int, sketchers: Sequence[Sketcher]
) -> tuple[int, np.ndarray, list[np.ndarray]]:
    """A piece's block Grams, each scaled by s_i·s_j (exact), and its sketch terms, for
    in-order merging."""
    first, q, signs, s64 = piece
    x = float_blocks(q, block_size, signs)
    grams = np.matmul(x, x.transpose(0, 2, 1)).astype(np.float64)
    grams *= s64.T[:, :, None] * s64.T[:, None, :]
    return first, grams, [sketcher.block_terms(x, s64) for sketcher in sketchers]


def gram_diagonal(source: ChunkSource, visit: ChunkVisitor | None = None) -> np.ndarray:
    """diag(G) = ‖u_i‖², bit-identical to :func:`gram`'s diagonal (the same exact block
    sums, products and block order) in an O(n·d) pass instead of O(n²·d); ``visit`` as in
    :func:`gram`."""
    g = np.zeros(source.n, dtype=np.float64)

    def merge(sq: np.ndarray) -> None:
        for term in sq:  # block order
            np.add(g, term, out=g)

    task = partial(_scaled_norms, block_size=source.block_size)
    _stream(source, task, merge, visit, values=NORMS_VALUES)
    return g


def _scaled_norms(piece: Piece, block_size: int) -> np.ndarray:
    """Each block's ‖q_i‖² (exact: < 2²⁴) times s_i², (blocks, n), for in-order merging."""
    _, q, _, s64 = piece
    x = float_blocks(q, block_size)
    sq = np.einsum("mnb,mnb->mn", x, x).astype(np.float64)
    sq *= s64.T * s64.T
    return sq


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
