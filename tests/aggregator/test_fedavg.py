import numpy as np

from market.aggregator.rules import get_rule
from tests.aggregator.helpers import random_batch


def test_fedavg_weights_by_capped_samples() -> None:
    batch = random_batch(3, 2000, seed=0)
    rule = get_rule("fedavg", max_samples=100)
    res = rule.aggregate(batch, sample_counts=np.array([50, 100, 10_000]))
    assert np.allclose(res.coefficients, [0.2, 0.4, 0.4])
    assert np.allclose(res.aggregate, res.coefficients @ batch.dense(), rtol=1e-12)
    assert res.flags == [None, None, None] and res.state is None and res.linear


def test_fedavg_defaults_and_zero_counts() -> None:
    batch = random_batch(4, 100, seed=1)
    res = get_rule("fedavg").aggregate(batch)
    assert np.allclose(res.coefficients, 0.25)
    res = get_rule("fedavg").aggregate(batch, sample_counts=np.array([0, 1, 1, 0]))
    assert res.flags[0] and res.flags[3] and res.flags[1] is None
    res = get_rule("fedavg").aggregate(batch, sample_counts=np.zeros(4, np.int64))
    assert np.allclose(res.coefficients, 0.25)


def test_fedavg_bytes_are_reproducible() -> None:
    batch = random_batch(6, 5000, seed=2)
    counts = np.array([3, 1, 4, 1, 5, 9])
    a = get_rule("fedavg").aggregate(batch, counts).aggregate
    b = get_rule("fedavg").aggregate(batch, counts).aggregate
    assert a.tobytes() == b.tobytes()
