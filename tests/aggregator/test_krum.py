import numpy as np
import pytest

from market.aggregator.rules import get_rule
from market.errors import AggregationError
from tests.aggregator import dense_reference as ref
from tests.aggregator.helpers import random_batch, rel_close


@pytest.mark.parametrize("seed", range(4))
def test_krum_matches_dense(seed: int) -> None:
    batch = random_batch(11, 1500, seed=seed)
    u = batch.dense()
    res = get_rule("krum", f=3).aggregate(batch)
    assert rel_close(res.aggregate, ref.krum(u, 3))
    assert res.coefficients.sum() == 1.0 and np.count_nonzero(res.coefficients) == 1
    assert rel_close(res.evidence["scores"], ref.krum_scores(u, 3))
    assert sum(f is not None for f in res.flags) == 3


@pytest.mark.parametrize(("f", "m"), [(2, None), (3, 4), (0, None)])
def test_multi_krum_matches_dense(f: int, m: int | None) -> None:
    batch = random_batch(9, 2100, seed=f)
    u = batch.dense()
    res = get_rule("multi_krum", f=f, m=m).aggregate(batch)
    assert rel_close(res.aggregate, ref.multi_krum(u, f, m or 9 - f))
    assert sum(x is not None for x in res.flags) == 9 - (m or 9 - f)


def test_krum_picks_the_honest_cluster() -> None:
    rng = np.random.default_rng(0)
    honest = rng.normal(size=(7, 500)) * 0.1 + 1.0
    byz = rng.normal(size=(3, 500)) * 5 - 10
    from market.aggregator.rules import QuantizedBatch

    batch = QuantizedBatch.from_dense(np.vstack([honest, byz]))
    res = get_rule("krum", f=3).aggregate(batch)
    assert res.evidence["selected"][0] < 7
    assert all(res.flags[i] for i in range(7, 10))


def test_krum_refuses_too_many_byzantine() -> None:
    with pytest.raises(AggregationError, match="2f"):
        get_rule("krum", f=3).aggregate(random_batch(6, 10))
    with pytest.raises(AggregationError, match="neighbours"):
        get_rule("krum", neighbours="flower")
