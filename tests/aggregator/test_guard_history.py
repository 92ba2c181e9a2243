"""Guard's history-based tests: groups of noisy Sybils, twins, and the per-round gate."""

import json

import numpy as np

from market.aggregator.rules import QuantizedBatch, get_rule

D = 800  # ≤ sketch_dim 1024: the history sketch is exact


def _rounds(make_round, ids: list[str], rounds: int, **params):
    """Run guard over several rounds with persisted (JSON round-tripped) state."""
    rule, state, results = get_rule("guard", sketch_dim=1024, **params), None, []
    for r in range(rounds):
        res = rule.aggregate(QuantizedBatch.from_dense(make_round(r)), state=state, ids=ids)
        state = json.loads(json.dumps(res.state))
        results.append(res)
    return results


def test_noisy_sybil_group_loses_its_weight_twins_keep_theirs() -> None:
    rng = np.random.default_rng(3)
    attack = 1.2 * rng.normal(size=D)  # one direction the six identities share each round
    twin_base = rng.normal(size=D)
    ids = [f"h{i}" for i in range(12)] + ["twin0", "twin1"] + [f"s{i}" for i in range(6)]

    def make_round(_: int) -> np.ndarray:
        common = 0.5 * rng.normal(size=D)
        honest = common + rng.normal(size=(12, D))
        # Twins: honest trainers with the same data; their histories reach cosine ≈ 0.96
        # (above group_lo, below the near-identical 0.99), as label-skewed twins do.
        twins = common + twin_base + 0.6 * rng.normal(size=(2, D))
        # Each copy has independent noise of half the attack's RMS: per-round cosine 0.8.
        sybils = attack + 0.5 * 1.2 * rng.normal(size=(6, D))
        return np.vstack([honest, twins, sybils])

    results = _rounds(make_round, ids, 8)
    first, last = results[0], results[-1]
    # Round 1: histories are single updates (cosine 0.8 < group_lo): no discount yet.
    assert first.coefficients[14:].sum() > 0.2
    # After 8 rounds the six histories agree to ≈ 0.97: the group is discounted.
    assert last.coefficients[14:].sum() / last.coefficients.sum() < 0.02
    assert all("near-duplicate" in f for f in last.flags[14:])
    # Twins (one look-alike each) keep the same weight as any honest trainer.
    honest = last.coefficients[:12]
    assert np.all(last.coefficients[12:14] > 0.5 * honest.mean())
    assert not any(last.flags[:14])


def test_clone_count_in_flags() -> None:
    rng = np.random.default_rng(4)
    ids = [f"h{i}" for i in range(10)] + ["c0", "c1", "c2"]
    clone = rng.normal(size=D)

    def make_round(_: int) -> np.ndarray:
        honest = 0.5 * rng.normal(size=D) + rng.normal(size=(10, D))
        return np.vstack([honest, np.tile(clone, (3, 1))])

    last = _rounds(make_round, ids, 2)[-1]
    assert last.flags[10] == "guard: near-duplicate of 2.0 other updates"
    # Three identical copies weigh 1/9 each: a third of one trainer together.
    assert np.allclose(last.coefficients[10:], last.coefficients[0] / 9, rtol=1e-6)


def test_one_opposing_round_is_forgiven_consistent_opposition_is_not() -> None:
    rng = np.random.default_rng(5)
    trend = rng.normal(size=D)  # the model's trajectory, shared across rounds
    ids = [f"h{i}" for i in range(12)] + ["odd", "opposer"]

    def make_round(r: int) -> np.ndarray:
        honest = trend + rng.normal(size=(12, D))
        # "odd" is honest but one round points against the centre (strong label skew).
        odd = (-0.8 * trend if r == 4 else trend) + rng.normal(size=D)
        opposer = -trend + rng.normal(size=D)
        return np.vstack([honest, odd, opposer])

    results = _rounds(make_round, ids, 5)
    last = results[-1]
    assert last.evidence["cosine_to_centre"][12] < -0.5
    assert last.evidence["gate"][12] == 1.0 and last.coefficients[12] > 0
    assert all(r.coefficients[13] == 0 for r in results)
    assert "opposes" in last.flags[13]
    # Without history (no ids) the same round's opposition is gated: it is the only signal.
    rule = get_rule("guard")
    alone = rule.aggregate(QuantizedBatch.from_dense(make_round(4)))
    assert alone.coefficients[12] == 0 and alone.coefficients[13] == 0


def test_single_class_twins_keep_their_weight_a_clone_pair_does_not() -> None:
    """At α = 0.05 honest trainers with one class each come in twins whose histories reach
    cosine 0.998 (measured on digits); a Sybil's copies sit at ≥ 0.9999 after a round or two.
    The near-duplicate cut lies between them, and with two identities only that cut (not
    the group kernel, which needs three look-alikes) tells them apart."""
    rng = np.random.default_rng(6)
    twin_base, clone = rng.normal(size=D), rng.normal(size=D)
    ids = [f"h{i}" for i in range(10)] + ["twin0", "twin1", "c0", "c1"]
    twin_history = np.zeros((2, D))

    def make_round(_: int) -> np.ndarray:
        honest = 0.5 * rng.normal(size=D) + rng.normal(size=(10, D))
        twins = twin_base + 0.1 * rng.normal(size=(2, D))
        twin_history[...] += twins
        clones = clone + 1e-3 * rng.normal(size=(2, D))
        return np.vstack([honest, twins, clones])

    last = _rounds(make_round, ids, 4)[-1]
    a, b = twin_history
    assert 0.997 < a @ b / np.linalg.norm(a) / np.linalg.norm(b) < 0.999
    honest = last.coefficients[:10]
    assert np.all(last.coefficients[10:12] > 0.5 * honest.mean()) and not last.flags[10]
    assert np.all(last.coefficients[12:] < 0.3 * honest.mean())
    assert "near-duplicate" in last.flags[12]
