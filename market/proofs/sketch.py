"""Public random sketches s_i = R u_i of a round's updates, bit-exact on every machine.

Why: a sketch is a k-number fingerprint of a d-parameter update that anyone can recompute
from the update and a public seed, so a report can commit to what each update *was* in a
form small enough for a ZK circuit (SPEC "Zero-knowledge proof of scoring").

The seed is the hash of the first block whose timestamp is after the round's reveal
deadline: every update is fixed (revealed) before anyone can know it, so nobody can shape an
update against R. R (d×k) has entries in {−1, 0, +1} from a keyed counter-mode hash
(SplitMix64 of seed ⊕ the entry's index): P(0) = 1/2, P(±1) = 1/4 each, so E[RᵀR] = d/2·I
up to scaling and inner products of sketches estimate those of updates (the 1/√(d/2)
normalisation is left out: the sketches stay integers per block).

Exactness: per block b of B ≤ 1024 int8 values, z_b = R_bᵀ q_b is an integer below
1024·127 < 2²⁴, exact in a float32 GEMM whatever order BLAS sums in. The sketch is
s_i = Σ_b scale_{i,b} · z_{i,b}, added in float64 in block order: one rounding per product
and per add, in an order we fix, so the bytes are identical everywhere.
"""

from __future__ import annotations

import hashlib

import numpy as np
from web3 import Web3

from market.aggregator.rules.base import ChunkSource
from market.errors import ProofError

SKETCH_SCHEME = "market-sketch/1"
DEFAULT_SKETCH_DIM = 32

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def seed_key(seed: bytes) -> np.uint64:
    """The 64-bit PRG key of a 32-byte seed (first 8 bytes of its sha256, big-endian)."""
    return np.uint64(int.from_bytes(hashlib.sha256(seed).digest()[:8], "big"))


def projection_rows(seed: bytes, start: int, stop: int, k: int) -> np.ndarray:
    """Rows [start, stop) of R as float32 (stop−start, k) with entries in {−1, 0, +1}."""
    idx = np.arange(start, stop, dtype=np.uint64)[:, None] * np.uint64(k) + np.arange(
        k, dtype=np.uint64
    )
    h = _splitmix(idx ^ seed_key(seed))
    bits = (h >> np.uint64(62)).astype(np.int8)  # 0, 1, 2, 3
    return np.select([bits == 1, bits == 2], [1.0, -1.0], 0.0).astype(np.float32)


def sketches(source: ChunkSource, seed: bytes, k: int = DEFAULT_SKETCH_DIM) -> np.ndarray:
    """The (n, k) float64 sketches R u_i of every update in ``source``, bit-reproducible."""
    if not 1 <= k <= 256:
        raise ProofError(f"sketch dimension must be in [1, 256], got {k}")
    b = source.block_size
    if b > 1024:
        raise ProofError(f"block size {b} exceeds 1024: float32 block sketches not exact")
    out = np.zeros((source.n, k), dtype=np.float64)
    for col, q, s in source.chunks():
        cols = q.shape[1]
        blocks = s.shape[1]
        pad = blocks * b - cols
        r = projection_rows(seed, col, col + cols, k)
        x = q.astype(np.float32)
        if pad:
            x = np.pad(x, ((0, 0), (0, pad)))
            r = np.pad(r, ((0, pad), (0, 0)))
        # (blocks, n, B) @ (blocks, B, k) -> (blocks, n, k), every entry an exact integer
        z = np.matmul(x.reshape(source.n, blocks, b).transpose(1, 0, 2), r.reshape(blocks, b, k))
        s64 = s.astype(np.float64)
        for blk in range(blocks):
            out += s64[:, blk : blk + 1] * z[blk].astype(np.float64)
    return out


def sketch_commitment(sketch_rows: list[list[float]]) -> str:
    """sha256 over the sketches' float64 big-endian bytes, row by row: binds the report's
    sketches to one 32-byte value (hex, 0x-prefixed)."""
    h = hashlib.sha256(SKETCH_SCHEME.encode())
    for row in sketch_rows:
        h.update(np.asarray(row, dtype=">f8").tobytes())
    return "0x" + h.hexdigest()


def seed_block(w3: Web3, after_timestamp: int) -> tuple[int, bytes]:
    """(number, hash) of the first block with timestamp > ``after_timestamp``.

    Raises ProofError when the chain has no such block yet (mine one, or wait)."""
    latest = w3.eth.get_block("latest")
    if latest["timestamp"] <= after_timestamp:
        raise ProofError(
            f"no block after timestamp {after_timestamp} yet (latest block "
            f"{latest['number']} at {latest['timestamp']}): wait for the reveal window to close"
        )
    lo, hi = 0, int(latest["number"])  # invariant: block hi is after the deadline
    while lo < hi:
        mid = (lo + hi) // 2
        if w3.eth.get_block(mid)["timestamp"] > after_timestamp:
            hi = mid
        else:
            lo = mid + 1
    return hi, bytes(w3.eth.get_block(hi)["hash"])
