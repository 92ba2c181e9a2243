"""Sketches: integer-exact per block, independent of chunking, seeded by the chain."""

import numpy as np
import pytest

from market.aggregator.rules import QuantizedBatch
from market.errors import ProofError
from market.proofs.sketch import (
    projection_rows,
    seed_block,
    sketch_commitment,
    sketches,
)

SEED = bytes(range(32))


def batch(n: int = 4, d: int = 3000, seed: int = 0) -> QuantizedBatch:
    return QuantizedBatch.from_dense(np.random.default_rng(seed).normal(size=(n, d)))


def test_projection_is_ternary_balanced_and_keyed():
    r = projection_rows(SEED, 0, 4096, 32)
    assert set(np.unique(r)) == {-1.0, 0.0, 1.0}
    assert abs((r == 0).mean() - 0.5) < 0.02 and abs(r.mean()) < 0.02
    assert np.array_equal(projection_rows(SEED, 100, 200, 32), r[100:200])
    assert not np.array_equal(projection_rows(b"\1" * 32, 0, 4096, 32), r)


def test_sketches_match_a_dense_reference_and_ignore_chunking():
    b = batch()
    s = sketches(b, SEED, 32)
    dense = b.dense() @ projection_rows(SEED, 0, b.d, 32).astype(np.float64)
    np.testing.assert_allclose(s, dense, rtol=1e-12, atol=1e-12)

    class Small(QuantizedBatch):
        def chunk_blocks(self, chunk_values=0):  # one block per chunk
            return 1

    small = Small(b.q, b.scales, b.block_size)
    assert sketches(small, SEED, 32).tobytes() == s.tobytes()


def test_sketch_inner_products_estimate_the_updates():
    rng = np.random.default_rng(1)
    base = rng.normal(size=8192)
    u = np.stack([base + 0.3 * rng.normal(size=8192), rng.normal(size=8192)])
    s = sketches(QuantizedBatch.from_dense(u), SEED, 64) / np.sqrt(8192 / 2)
    cos = s[0] @ s[1] / np.linalg.norm(s[0]) / np.linalg.norm(s[1])
    assert abs(cos) < 0.5  # unrelated updates stay unrelated
    same = sketches(QuantizedBatch.from_dense(np.stack([u[0], u[0] * 2])), SEED, 64)
    assert np.allclose(same[1], 2 * same[0], rtol=1e-6)


def test_commitment_binds_every_value():
    rows = sketches(batch(), SEED, 16).tolist()
    c = sketch_commitment(rows)
    rows[2][5] = np.nextafter(rows[2][5], np.inf)
    assert sketch_commitment(rows) != c and c.startswith("0x") and len(c) == 66


def test_bad_dimension_is_refused():
    with pytest.raises(ProofError):
        sketches(batch(), SEED, 0)


def test_seed_block_is_the_first_block_after_the_deadline(market_env):
    w3 = market_env.w3
    deadline = market_env.now() + 50
    with pytest.raises(ProofError, match="no block after"):
        seed_block(w3, deadline)
    market_env.advance(10)
    market_env.advance(100)
    number, block_hash = seed_block(w3, deadline)
    block = w3.eth.get_block(number)
    assert block["timestamp"] > deadline >= w3.eth.get_block(number - 1)["timestamp"]
    assert bytes(block["hash"]) == block_hash
    market_env.advance(100)
    assert seed_block(w3, deadline) == (number, block_hash)
