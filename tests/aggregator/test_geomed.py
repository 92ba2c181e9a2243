import numpy as np
import pytest

from market.aggregator.rules import QuantizedBatch, get_rule
from tests.aggregator import dense_reference as ref
from tests.aggregator.helpers import random_batch, rel_close


@pytest.mark.parametrize("init", ["zero", "mean"])
def test_weiszfeld_matches_dense(init: str) -> None:
    batch = random_batch(8, 3000, seed=4)
    u = batch.dense()
    rule = get_rule("geometric_median", nu=1e-6, max_iter=7, tol=0.0, init=init)
    z0 = np.zeros(u.shape[1]) if init == "zero" else u.mean(0)
    assert rel_close(rule.aggregate(batch).aggregate, ref.weiszfeld(u, 1e-6, 7, z0))


def test_geometric_median_resists_outliers() -> None:
    rng = np.random.default_rng(1)
    honest = rng.normal(size=(7, 400)) * 0.1 + 1.0
    u = np.vstack([honest, np.full((3, 400), 1e3)])
    res = get_rule("geometric_median").aggregate(QuantizedBatch.from_dense(u))
    assert np.linalg.norm(res.aggregate - honest.mean(0)) < 0.1 * np.linalg.norm(honest.mean(0))
    assert max(res.coefficients[7:]) < 1e-3
    assert res.evidence["iterations"] >= 1
