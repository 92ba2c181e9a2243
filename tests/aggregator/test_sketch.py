"""The CountSketch the Gram pass computes: its definition bit for bit, chunking-independent."""

import numpy as np
import pytest

from market.aggregator.rules import CallableSource, gram
from market.aggregator.rules.sketch import Sketcher, column_signs
from market.errors import AggregationError
from tests.aggregator.helpers import random_batch


def reference_sketch(q: np.ndarray, scales: np.ndarray, k: int, block: int) -> np.ndarray:
    """Per block: Σ σ(j)·q_j per bucket j mod k in exact integers, times the block's scale,
    added block after block."""
    n, d = q.shape
    sigma = column_signs(0, d).astype(np.int64)
    out = np.zeros((n, k))
    for b in range(scales.shape[1]):
        cols = np.arange(b * block, min(d, (b + 1) * block))
        ints = np.zeros((n, k), dtype=np.int64)
        np.add.at(ints.T, cols % k, (q[:, cols].astype(np.int64) * sigma[cols]).T)
        out = out + scales[:, b : b + 1].astype(np.float64) * ints.astype(np.float64)
    return out


class TwoBlockChunks(CallableSource):
    def chunk_blocks(self, chunk_values: int = 0) -> int:
        return 2


@pytest.mark.parametrize(
    ("n", "d", "k", "block"),
    [
        (4, 3000, 4096, 1024),
        (5, 9000, 64, 1024),
        (3, 5000, 1024, 256),
        (6, 2500, 2048, 256),
        (4, 4000, 256, 768),
    ],
)
def test_sketch_is_the_block_exact_definition(n: int, d: int, k: int, block: int) -> None:
    batch = random_batch(n, d, seed=d + k, block_size=block)
    sketcher = Sketcher(n, k, block)
    g = gram(batch, sketchers=[sketcher])
    assert np.array_equal(g, gram(batch))  # signs leave the Gram matrix unchanged
    ref = reference_sketch(batch.q, batch.scales, k, block)
    assert sketcher.result().tobytes() == ref.tobytes()


def test_sketch_ignores_chunking_and_is_a_signed_copy_when_d_fits() -> None:
    batch = random_batch(4, 3000, seed=4)
    exact = Sketcher(4, 4096)
    gram(batch, sketchers=[exact])
    assert np.array_equal(exact.result()[:, :3000], batch.dense() * column_signs(0, 3000))
    assert not exact.result()[:, 3000:].any()
    many = random_batch(4, 9000, seed=6)
    whole, streamed = Sketcher(4, 2048), Sketcher(4, 2048)
    gram(many, sketchers=[whole])
    gram(TwoBlockChunks(4, 9000, many.read), sketchers=[streamed])
    assert whole.result().tobytes() == streamed.result().tobytes()


def test_sketch_estimates_norms() -> None:
    batch = random_batch(4, 30000, seed=5)
    sketcher = Sketcher(4, 1024)
    gram(batch, sketchers=[sketcher])
    sk = sketcher.result()
    assert np.allclose((sk**2).sum(1), (batch.dense() ** 2).sum(1), rtol=0.2)


def test_sketch_dimension_must_fit_the_blocks() -> None:
    with pytest.raises(AggregationError, match="power of two"):
        Sketcher(2, 48)
    with pytest.raises(AggregationError, match="divide one another"):
        Sketcher(2, 64, block_size=1000)
