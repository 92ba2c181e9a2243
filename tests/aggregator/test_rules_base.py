import numpy as np
import pytest

from market.aggregator.rules import (
    RULES,
    CallableSource,
    QuantizedBatch,
    dequantize,
    get_rule,
    weighted_sum,
)
from market.aggregator.rules.base import sequential_sum, weighted_sums
from market.errors import AggregationError
from tests.aggregator.helpers import random_batch


def test_from_dense_round_trip_within_half_step() -> None:
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3, 2500))
    batch = QuantizedBatch.from_dense(u)
    assert batch.q.dtype == np.int8 and batch.scales.shape == (3, 3)
    step = np.repeat(batch.scales.astype(np.float64), 1024, axis=1)[:, :2500]
    assert np.all(np.abs(batch.dense() - u) <= step / 2 + 1e-12)


def test_stochastic_rounding_is_unbiased_on_average() -> None:
    u = np.full((1, 1024), 0.3)
    u[0, 0] = 1.0  # fixes the scale at 1/127
    rng = np.random.default_rng(1)
    means = [QuantizedBatch.from_dense(u, rng=rng).dense()[0, 1:].mean() for _ in range(20)]
    assert abs(np.mean(means) - 0.3) < 1e-3


def test_batch_validation() -> None:
    with pytest.raises(AggregationError, match="-128"):
        QuantizedBatch(np.full((1, 4), -128, np.int8), np.ones((1, 1), np.float32))
    with pytest.raises(AggregationError, match="scales"):
        QuantizedBatch(np.zeros((2, 4), np.int8), np.ones((2, 2), np.float32))
    with pytest.raises(AggregationError, match="int8"):
        QuantizedBatch(np.zeros((2, 4), np.int16), np.ones((2, 1), np.float32))


def index_order_loop(batch: QuantizedBatch, c: np.ndarray) -> np.ndarray:
    """The definition: start at +0, add c_i·u_i for every nonzero c_i in index order."""
    u = dequantize(batch.q, batch.scales, batch.block_size)
    expected = np.zeros(batch.d)
    for i in range(batch.n):
        if c[i] != 0:
            expected += c[i] * u[i]
    return expected


@pytest.mark.parametrize(
    ("n", "d", "block"),
    [(5, 3000, 1024), (40, 70000, 1024), (9, 5000, 256), (20, 1, 1024), (100, 5121, 1024)],
)
def test_weighted_sum_is_the_index_order_loop(n: int, d: int, block: int) -> None:
    batch = random_batch(n, d, seed=n * d, block_size=block)
    rng = np.random.default_rng(d)
    for c in (rng.normal(size=n), np.where(rng.random(n) < 0.5, 0.0, rng.random(n))):
        assert weighted_sum(batch, c).tobytes() == index_order_loop(batch, c).tobytes()
    rows = rng.normal(size=(3, n)) * (rng.random((3, n)) < 0.7)
    streamed = CallableSource(n, d, batch.read, block)
    together = weighted_sums(streamed, rows)
    for r in range(3):
        assert together[r].tobytes() == index_order_loop(batch, rows[r]).tobytes()


@pytest.mark.parametrize("width", [1, 2, 7])
def test_sequential_sum_adds_rows_in_index_order(width: int) -> None:
    rng = np.random.default_rng(width)
    rows = rng.normal(size=(100, width)) * 10.0 ** rng.integers(-8, 8, size=(100, 1))
    acc = rows[0].copy()
    for row in rows[1:]:
        acc += row
    assert sequential_sum(rows).tobytes() == acc.tobytes()


def test_weighted_sum_of_zeros_is_positive_zero() -> None:
    batch = QuantizedBatch(np.zeros((3, 2000), np.int8), np.ones((3, 2), np.float32))
    out = weighted_sum(batch, np.array([-1.0, 0.0, -2.0]))
    assert out.tobytes() == index_order_loop(batch, np.array([-1.0, 0.0, -2.0])).tobytes()
    assert not np.signbit(out).any()
    assert not weighted_sum(batch, np.zeros(3)).any()


def test_get_rule_errors_name_the_problem() -> None:
    with pytest.raises(AggregationError, match="unknown aggregation rule 'nope'"):
        get_rule("nope")
    with pytest.raises(AggregationError, match="no parameter.*bogus"):
        get_rule("fedavg", bogus=1)
    with pytest.raises(AggregationError, match="max_samples"):
        get_rule("fedavg", max_samples=0)


def test_every_rule_has_json_params() -> None:
    import json

    for name, cls in RULES.items():
        rule = get_rule(name)
        assert rule.name == name == cls.name
        json.dumps(rule.params)


def test_every_parameter_of_every_rule_is_documented() -> None:
    """`market aggregator rules` prints a line per parameter: none may be missing."""
    from market.aggregator.rules import catalogue

    for rule in catalogue():
        assert list(rule["help"]) == list(rule["parameters"]), rule["name"]
        assert all(rule["help"].values()), (rule["name"], rule["help"])
