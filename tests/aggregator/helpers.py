"""Shared builders for the aggregator tests: random quantised batches and dense references."""

from __future__ import annotations

import numpy as np

from market.aggregator.rules import QuantizedBatch


def random_batch(
    n: int, d: int, seed: int = 0, block_size: int = 1024, spread: float = 1.0
) -> QuantizedBatch:
    """Random updates with per-block scales spanning a few orders of magnitude."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, d)) * np.exp(rng.normal(scale=spread, size=(n, 1)))
    return QuantizedBatch.from_dense(u, block_size=block_size)


def exact_gram_reference(batch: QuantizedBatch) -> np.ndarray:
    """Block dot products in exact int64, scaled and summed in float64 in block order."""
    n, d = batch.q.shape
    b = batch.block_size
    q = batch.q.astype(np.int64)
    g = np.zeros((n, n))
    for k in range(batch.scales.shape[1]):
        blk = q[:, k * b : (k + 1) * b]
        ints = np.array([[int(np.dot(blk[i], blk[j])) for j in range(n)] for i in range(n)])
        s = batch.scales[:, k].astype(np.float64)
        g = g + ints.astype(np.float64) * np.outer(s, s)
    return g


def rel_close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-9) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1e-300, float(np.max(np.abs(b))) if b.size else 1.0)
    return bool(np.max(np.abs(a - b)) <= rtol * scale) if a.size else True
