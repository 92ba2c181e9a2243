import numpy as np
import pytest

from market.aggregator.rules import QuantizedBatch, get_rule
from market.aggregator.rules.coordinate import median_chunk, trimmed_chunk
from tests.aggregator import dense_reference as ref
from tests.aggregator.helpers import random_batch, rel_close


@pytest.mark.parametrize("n", [1, 2, 7, 10])
def test_median_matches_numpy(n: int) -> None:
    batch = random_batch(n, 2500, seed=n)
    res = get_rule("median").aggregate(batch)
    assert np.array_equal(res.aggregate, np.median(batch.dense(), axis=0))
    assert not res.linear and abs(res.coefficients.sum() - 1) < 1e-12


@pytest.mark.parametrize(("n", "f"), [(5, 0), (7, 2), (10, 3), (3, 1)])
def test_trimmed_mean_matches_sorted_reference(n: int, f: int) -> None:
    batch = random_batch(n, 3000, seed=10 + n)
    res = get_rule("trimmed_mean", f=f).aggregate(batch)
    assert rel_close(res.aggregate, ref.trimmed_mean(batch.dense(), f), 1e-12)
    assert abs(res.coefficients.sum() - 1) < 1e-12


def test_ties_are_shared_and_sums_canonical() -> None:
    u = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 5.0], [0.0, 2.0], [3.0, 2.0]])
    agg, mass = trimmed_chunk(u.T.copy(), 1)
    assert np.allclose(agg, [1.0, 2.0])
    assert np.isclose(mass.sum(), 2.0)
    med, share = median_chunk(u.T.copy())
    assert np.allclose(med, [1.0, 2.0]) and np.isclose(share.sum(), 2.0)
    # Permuting rows permutes the shares and leaves the bytes of the aggregate unchanged.
    perm = [4, 2, 0, 3, 1]
    agg2, mass2 = trimmed_chunk(u[perm].T.copy(), 1)
    assert agg2.tobytes() == agg.tobytes() and np.allclose(mass2, mass[perm])


def test_trimmed_mean_drops_outliers_and_flags_them() -> None:
    rng = np.random.default_rng(3)
    u = np.vstack([rng.normal(size=(8, 1000)) * 0.1, np.full((2, 1000), 100.0)])
    res = get_rule("trimmed_mean", f=2).aggregate(QuantizedBatch.from_dense(u))
    assert np.abs(res.aggregate).max() < 1.0
    assert res.coefficients[8] == 0 and res.flags[8] and res.flags[9]
