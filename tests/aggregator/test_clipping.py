import numpy as np
import pytest

from market.aggregator.engine import run_rules
from market.aggregator.rules import QuantizedBatch, get_rule, gram
from market.aggregator.rules.gram_rule import RoundInputs, finish
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


@pytest.mark.parametrize(("tau", "iterations"), [(100.0, 1), (None, 1), (2.0, 0)])
def test_first_step_from_zero_needs_only_the_norms(tau: float | None, iterations: int) -> None:
    batch = random_batch(12, 5000, seed=8)
    rule = get_rule("centered_clipping", tau=tau, iterations=iterations, init="zero")
    assert rule.diagonal_only()
    alone = rule.aggregate(batch)
    assert alone.gram is None  # the norms pass computed no Gram matrix
    full = finish(batch, rule.solve(RoundInputs(gram(batch), np.ones(12, np.int64))))
    together = run_rules(batch, [rule, get_rule("krum")])["centered_clipping"]
    norms_only = run_rules(batch, [rule, get_rule("median")])
    assert norms_only["centered_clipping"].gram is None
    assert (
        norms_only["median"].aggregate.tobytes()
        == get_rule("median").aggregate(batch).aggregate.tobytes()
    )
    for other in (full, together, norms_only["centered_clipping"]):
        assert other.aggregate.tobytes() == alone.aggregate.tobytes()
        assert other.coefficients.tobytes() == alone.coefficients.tobytes()
        assert other.evidence == alone.evidence and other.flags == alone.flags
    assert not get_rule("centered_clipping", iterations=2).diagonal_only()
    assert not get_rule("centered_clipping", iterations=1, init="mean").diagonal_only()
