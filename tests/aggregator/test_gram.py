import numpy as np
import pytest

from market.aggregator.gram import cosines_from_gram, distances_from_gram, gram
from market.aggregator.rules import CallableSource, QuantizedBatch
from market.aggregator.rules.gram import gram_diagonal
from market.errors import AggregationError
from tests.aggregator.helpers import exact_gram_reference, random_batch


@pytest.mark.parametrize(("n", "d", "block"), [(1, 5, 1024), (4, 3000, 1024), (7, 2500, 256)])
def test_gram_bit_equal_to_exact_integer_reference(n: int, d: int, block: int) -> None:
    batch = random_batch(n, d, seed=n + d, block_size=block)
    assert np.array_equal(gram(batch), exact_gram_reference(batch))


@pytest.mark.parametrize(("n", "d", "block"), [(1, 5, 1024), (6, 9000, 1024), (7, 2500, 256)])
def test_gram_diagonal_is_bit_identical_to_the_gram_diagonal(n: int, d: int, block: int) -> None:
    batch = random_batch(n, d, seed=n * d, block_size=block)
    assert gram_diagonal(batch).tobytes() == np.diag(gram(batch)).tobytes()
    streamed = CallableSource(n, d, batch.read, block)
    assert gram_diagonal(streamed).tobytes() == np.diag(gram(batch)).tobytes()
    q = np.full((2, 2048), -127, dtype=np.int8)  # the largest exact block sum
    assert np.array_equal(
        gram_diagonal(QuantizedBatch(q, np.ones((2, 2), np.float32))), [2048 * 127**2] * 2
    )


def test_gram_extreme_values_stay_exact() -> None:
    q = np.full((3, 2048), 127, dtype=np.int8)
    q[1] = -127
    batch = QuantizedBatch(q, np.ones((3, 2), dtype=np.float32))
    g = gram(batch)
    assert g[0, 0] == 2048 * 127**2 and g[0, 1] == -(2048 * 127**2)
    assert np.array_equal(g, exact_gram_reference(batch))


def test_gram_does_not_depend_on_chunking() -> None:
    batch = random_batch(6, 9000, seed=3)

    def fetch(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        return batch.read(a, b)

    streamed = CallableSource(batch.n, batch.d, fetch)
    chunks_seen = []
    g = gram(streamed, visit=lambda col, q, s: chunks_seen.append((col, q.shape)))
    assert np.array_equal(g, gram(batch))
    assert chunks_seen[0][0] == 0 and sum(s[1] for _, s in chunks_seen) == batch.d


def test_callable_source_checks_chunk_shapes() -> None:
    bad = CallableSource(2, 2048, lambda a, b: (np.zeros((2, 10), np.int8), np.ones((2, 2))))
    with pytest.raises(AggregationError, match="int8"):
        gram(bad)


def test_distances_and_cosines() -> None:
    batch = random_batch(5, 700, seed=1)
    u = batch.dense()
    g = gram(batch)
    d2 = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    assert np.allclose(distances_from_gram(g), d2, rtol=1e-9, atol=1e-9)
    nu = u / np.linalg.norm(u, axis=1, keepdims=True)
    assert np.allclose(cosines_from_gram(g), nu @ nu.T, atol=1e-12)
