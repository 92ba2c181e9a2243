import json

import numpy as np

from market.aggregator.rules import QuantizedBatch, get_rule
from market.aggregator.rules.foolsgold import similarity_weights
from tests.aggregator import dense_reference as ref
from tests.aggregator.helpers import random_batch, rel_close


def test_similarity_weights_match_loop_reference() -> None:
    rng = np.random.default_rng(0)
    h = rng.normal(size=(9, 40)) + rng.normal(size=40)
    nh = h / np.linalg.norm(h, axis=1, keepdims=True)
    for cap, eps in [(True, 0.0), (False, 1e-5)]:
        assert rel_close(
            similarity_weights(nh @ nh.T, 1.0, cap, eps), ref.foolsgold_weights(h, cap, eps)
        )


def test_sybilwall_without_history_matches_dense() -> None:
    batch = random_batch(7, 900, seed=3)
    u = batch.dense()
    res = get_rule("sybilwall", history=False).aggregate(batch)
    w = ref.foolsgold_weights(u, False, 1e-5)
    assert rel_close(res.aggregate, (w / w.sum()) @ u)


def _round(rng: np.random.Generator, n_honest: int, n_clones: int, d: int = 2000):
    honest = rng.normal(size=(n_honest, d))
    target = rng.normal(size=d)
    clones = target + 0.01 * rng.normal(size=(n_clones, d))
    return QuantizedBatch.from_dense(np.vstack([honest, clones]))


def test_sybilwall_cuts_clones_over_rounds_and_state_round_trips() -> None:
    rng = np.random.default_rng(5)
    ids = [f"h{i}" for i in range(10)] + [f"s{i}" for i in range(5)]
    rule = get_rule("sybilwall", sketch_dim=1024)
    state = None
    for _ in range(3):
        res = rule.aggregate(_round(rng, 10, 5), state=state, ids=ids)
        state = json.loads(json.dumps(res.state))
    assert res.coefficients[10:].sum() < 1e-6
    assert all(res.flags[i] for i in range(10, 15))
    assert min(res.coefficients[:10]) > 0.05 and not any(res.flags[:10])
    assert state["rounds"]["h0"] == 3 and len(state["history"]) == 15


def test_more_clones_do_not_raise_attacker_share() -> None:
    shares = []
    for k in (1, 10, 30):
        rng = np.random.default_rng(6)
        ids = [f"h{i}" for i in range(20)] + [f"s{i}" for i in range(k)]
        res = get_rule("sybilwall").aggregate(_round(rng, 20, k), ids=ids)
        shares.append(float(res.coefficients[20:].sum()))
    assert shares[1] <= shares[0] + 1e-12 and shares[2] <= shares[0] + 1e-12


def test_foolsgold_and_sybilwall_keep_diverse_honest_weights() -> None:
    rng = np.random.default_rng(7)
    batch = QuantizedBatch.from_dense(rng.normal(size=(10, 1000)))
    for name in ("foolsgold", "sybilwall"):
        res = get_rule(name).aggregate(batch, ids=[str(i) for i in range(10)])
        assert np.allclose(res.coefficients, 0.1, atol=0.02), name


def test_sybilwall_clip_mode_limits_a_lone_attacker() -> None:
    rng = np.random.default_rng(8)
    u = np.vstack([rng.normal(size=(9, 500)) + 1, 200 * rng.normal(size=(1, 500))])
    res = get_rule("sybilwall", byzantine="clip", history=False).aggregate(
        QuantizedBatch.from_dense(u)
    )
    assert np.linalg.norm(res.aggregate - u[:9].mean(0)) < 0.3 * np.linalg.norm(u[:9].mean(0))
    assert res.evidence["clip_factors"][9] < 0.05
