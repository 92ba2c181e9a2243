import json

import numpy as np

from market.aggregator.rules import QuantizedBatch, get_rule


def _honest(rng: np.random.Generator, n: int, d: int = 800) -> np.ndarray:
    common = rng.normal(size=d)
    return 0.5 * common + rng.normal(size=(n, d))


def test_guard_is_fedavg_when_nobody_attacks() -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 200, size=12)
    # Local work grows with data: norms proportional to the sample count.
    batch = QuantizedBatch.from_dense(_honest(rng, 12) * (counts / 100.0)[:, None])
    guard = get_rule("guard").aggregate(batch, counts, ids=[str(i) for i in range(12)])
    fedavg = get_rule("fedavg").aggregate(batch, counts)
    assert np.allclose(guard.coefficients, fedavg.coefficients, rtol=1e-12)
    assert not any(guard.flags)


def test_guard_zeroes_sign_flip_and_drops_norm_outliers() -> None:
    rng = np.random.default_rng(1)
    h = _honest(rng, 14)
    flipped = np.tile(-h.mean(0), (3, 1)) + 0.3 * rng.normal(size=(3, 800))
    noise = 100 * rng.normal(size=(3, 800))
    batch = QuantizedBatch.from_dense(np.vstack([h, flipped, noise]))
    res = get_rule("guard").aggregate(batch, np.full(20, 50))
    assert np.all(res.coefficients[14:] == 0)
    assert all(res.flags[14:]) and not any(res.flags[:14])
    assert "opposes" in res.flags[14] and "norm per sample" in res.flags[17]


def test_more_clones_buy_less_influence_across_rounds() -> None:
    shares = {}
    for k in (1, 5, 20):
        rng = np.random.default_rng(2)
        ids = [f"h{i}" for i in range(10)] + [f"s{i}" for i in range(k)]
        rule, state = get_rule("guard", sketch_dim=1024), None
        for _ in range(3):
            h = _honest(rng, 10)
            clones = np.tile(rng.normal(size=800), (k, 1)) + 1e-3 * rng.normal(size=(k, 800))
            res = rule.aggregate(
                QuantizedBatch.from_dense(np.vstack([h, clones])), state=state, ids=ids
            )
            state = json.loads(json.dumps(res.state))
        shares[k] = float(np.abs(res.coefficients[10:]).sum() / np.abs(res.coefficients).sum())
    assert shares[5] < shares[1] and shares[20] < shares[5]
    assert shares[20] < 0.01
