import numpy as np
import pytest

from market.aggregator.rules import QuantizedBatch, get_rule
from tests.aggregator import dense_reference as ref
from tests.aggregator.helpers import random_batch, rel_close


@pytest.mark.parametrize(("tau", "init"), [(None, "zero"), (2.0, "zero"), (None, "mean")])
def test_centered_clipping_matches_dense(tau: float | None, init: str) -> None:
    batch = random_batch(10, 2000, seed=5)
    u = batch.dense()
    res = get_rule("centered_clipping", tau=tau, iterations=4, init=init).aggregate(batch)
    v0 = np.zeros(u.shape[1]) if init == "zero" else u.mean(0)
    assert rel_close(res.aggregate, ref.centered_clipping(u, tau, 4, v0))


def test_centered_clipping_flags_far_updates() -> None:
    rng = np.random.default_rng(2)
    u = np.vstack([rng.normal(size=(8, 300)) * 0.1 + 1, np.full((2, 300), -50.0)])
    res = get_rule("centered_clipping").aggregate(QuantizedBatch.from_dense(u))
    assert res.flags[8] and res.flags[9] and not any(res.flags[:8])
    assert np.linalg.norm(res.aggregate - u[:8].mean(0)) < 0.5 * np.linalg.norm(u[:8].mean(0))
