import numpy as np
import pytest

from market.aggregator.rules import QuantizedBatch, get_rule
from market.aggregator.rules.flag import flag_irls
from tests.aggregator import dense_reference as ref
from tests.aggregator.helpers import random_batch, rel_close


@pytest.mark.parametrize(
    ("m", "lam", "iters", "scale"),
    [
        (1, 0.0, 5, "median_norm"),
        (3, 0.0, 10, "mean"),
        (2, 2.0, 4, "reference"),
        (4, 0.5, 3, "median_norm"),
        (2, 0.0, 6, "weighted_clip"),
    ],
)
def test_flag_matches_dense_irls(m: int, lam: float, iters: int, scale: str) -> None:
    rng = np.random.default_rng(m)
    base = rng.normal(size=(3, 600))
    u = rng.normal(size=(8, 3)) @ base + 0.3 * rng.normal(size=(8, 600))
    batch = QuantizedBatch.from_dense(u)
    rule = get_rule("flag", m=m, lambda_=lam, max_iter=iters, scale=scale, tol=1e-12)
    res = rule.aggregate(batch)
    expected, y = ref.flag_dense(batch.dense(), m, lam, iters, scale=scale)
    assert rel_close(res.aggregate, expected, 1e-9)


def test_flag_subspace_is_orthonormal_and_irls_descends() -> None:
    batch = random_batch(12, 800, seed=1)
    u = batch.dense()
    x = u / np.linalg.norm(u, axis=1, keepdims=True)
    c, s2, errs, _ = flag_irls(x @ x.T, 3, max_iter=20)
    y = x.T @ c
    assert np.allclose(y.T @ y, np.eye(3), atol=1e-9)
    assert all(b <= a + 1e-12 for a, b in zip(errs, errs[1:], strict=False))
    assert np.allclose(s2, np.abs(1 - ((y.T @ x.T) ** 2).sum(0)), atol=1e-9)


def test_flag_downweights_outlier_directions_and_keeps_scale() -> None:
    rng = np.random.default_rng(2)
    direction = rng.normal(size=500)
    honest = direction + 0.3 * rng.normal(size=(14, 500))
    byz = 50 * rng.normal(size=(6, 500))
    res = get_rule("flag", m=1).aggregate(QuantizedBatch.from_dense(np.vstack([honest, byz])))
    cos = res.aggregate @ direction / np.linalg.norm(res.aggregate) / np.linalg.norm(direction)
    assert cos > 0.95
    # median_norm scale: not blown up by the attackers' norms
    assert np.linalg.norm(res.aggregate) < 2 * np.linalg.norm(honest.mean(0))
    assert np.mean(res.evidence["sine"][14:]) > np.mean(res.evidence["sine"][:14])


def test_flag_zero_update_is_flagged() -> None:
    u = np.vstack([np.ones((3, 50)), np.zeros((1, 50))])
    res = get_rule("flag", m=1, scale="median_norm").aggregate(QuantizedBatch.from_dense(u))
    assert res.flags[3] == "flag: zero update" and res.coefficients[3] == 0
    assert np.allclose(res.aggregate, 0.75)  # mean of clipped updates, zero included
    res = get_rule("flag", m=1).aggregate(QuantizedBatch.from_dense(u))
    assert np.allclose(res.aggregate, 1.0)  # sample-weighted mean of the non-zero ones
