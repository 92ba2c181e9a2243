"""``market verify`` of a stateful rule: the history is rebuilt from earlier finalized
rounds, so the re-solve is checked, not skipped — and a report solved from the wrong history
fails it."""

from __future__ import annotations

import numpy as np
import pytest

from market.aggregator.service import Aggregator, layout_of
from market.db import Database
from market.owner import create_project
from market.proofs.verify import verify_round
from market.storage import EmbeddedStore, encode_update
from market.trainer.model import ModelSpec
from tests.test_verify import WINDOWS, commit_and_reveal, finalize_with


def _project(env, store, tmp_path, rule: str, rounds: int, params: dict | None = None):
    created = create_project(
        env.market,
        store,
        env.owner,
        aggregator=env.aggregator.address,
        rounds=rounds,
        reward_per_round_wei=10**18,
        windows=WINDOWS,
        name=f"history-{rule}",
        model=ModelSpec(hidden=(8,)),
        rule=rule,
        rule_params=params or {},
    )
    agg = Aggregator(env.market, store, env.aggregator, Database.at(tmp_path / "agg"))
    return created.project_id, layout_of(created.spec), agg


def _play_round(env, store, agg, pid, layout, rng, clones: int = 3) -> int:
    """Open a round; 5 trainers commit and reveal — the first ``clones`` near-identical and
    large (their histories stay alike afterwards), the others independent; close the
    reveal window."""
    number, _ = agg.open_round(pid)
    clone = rng.normal(size=layout.size) * 0.05
    vectors = [clone + 1e-4 * rng.normal(size=layout.size) for _ in range(clones)]
    vectors += [0.01 * rng.normal(size=layout.size) for _ in range(5 - clones)]
    blobs = [encode_update(layout.unflatten(v), layout, i) for i, v in enumerate(vectors)]
    commit_and_reveal(env, store, pid, number, blobs)
    return number


@pytest.mark.parametrize(
    ("rule", "params"), [("guard", {}), ("foolsgold", {}), ("guard", {"head": "auto"})]
)
def test_stateful_rule_re_solves_from_the_rebuilt_history(market_env, tmp_path, rule, params):
    env = market_env
    store = EmbeddedStore(tmp_path / "store")
    pid, layout, agg = _project(env, store, tmp_path, rule, rounds=3, params=params)
    rng = np.random.default_rng(1)
    for _ in range(3):
        number = _play_round(env, store, agg, pid, layout, rng)
        agg.finalize_round(pid, number)
        result = verify_round(env.market, store, pid, number)
        assert result.ok, result.failed()
        check = next(c for c in result.checks if c.name == "rule re-solve")
        assert check.ok is True, check
        assert f"history rebuilt from {number - 1} earlier round(s)" in check.detail
        if params:  # the layer name is resolved against the spec's layout, and checked
            report = agg.compute_round(pid, number)[0]
            assert report.rule_params["head"] == [520, 600, 10, 8]  # 64-8-10
            assert "label_trust" in report.evidence


@pytest.fixture
def second_round(market_env, tmp_path):
    """FoolsGold project: round 1 (three look-alikes) finalized, round 2 (no look-alikes)
    revealed. Round 2 alone shows no clones; with round 1 in the history, three trainers
    look alike — so its coefficients depend on the history."""
    env = market_env
    store = EmbeddedStore(tmp_path / "store")
    pid, layout, agg = _project(env, store, tmp_path, "foolsgold", rounds=2)
    rng = np.random.default_rng(2)
    agg.finalize_round(pid, _play_round(env, store, agg, pid, layout, rng))
    number = _play_round(env, store, agg, pid, layout, rng, clones=0)
    return env, store, agg, pid, number


def test_a_round_solved_from_the_wrong_history_fails(second_round, monkeypatch):
    env, store, agg, pid, number = second_round
    # An aggregator that ignores round 1 solves round 2 from no history.
    monkeypatch.setattr(agg, "_load_state", lambda *_: None)
    report, model, _ = agg.compute_round(pid, number)
    store.put(model)
    finalize_with(env, store, agg, pid, number, report)
    result = verify_round(env.market, store, pid, number)
    failed = {c.name: c.detail for c in result.failed()}
    assert set(failed) == {"rule re-solve"}, failed
    assert "history rebuilt from 1 earlier round(s)" in failed["rule re-solve"]


def test_an_aggregator_that_lost_its_database_rebuilds_the_history(
    second_round, tmp_path, monkeypatch
):
    env, store, agg, pid, number = second_round
    fresh = Aggregator(env.market, store, env.aggregator, Database.at(tmp_path / "fresh"))
    ours, _, _ = fresh.compute_round(pid, number)
    theirs, _, _ = agg.compute_round(pid, number)
    assert [e.coefficient for e in ours.submissions] == [e.coefficient for e in theirs.submissions]

    def replay_again(*_):
        raise AssertionError("the rebuilt history was not stored")

    # Rebuilt once: finalizing (which computes again and records) reads it from the database.
    monkeypatch.setattr("market.aggregator.service.replayed_state", replay_again)
    fresh.finalize_round(pid, number)
    assert verify_round(env.market, store, pid, number).ok


def test_a_computed_round_that_expired_does_not_enter_the_history(market_env, tmp_path):
    """The aggregator computed round 1 (and saved the history after it) but never finalized
    it; the round expired. Round 2 must start from no history, as `market verify` does."""
    env = market_env
    store = EmbeddedStore(tmp_path / "store")
    pid, layout, agg = _project(env, store, tmp_path, "foolsgold", rounds=2)
    rng = np.random.default_rng(3)
    first = _play_round(env, store, agg, pid, layout, rng)
    agg._record(pid, first, *_report_cid_and_state(agg, store, pid, first))
    env.advance(WINDOWS.finalize + 1)
    env.market.expire_round(env.outsider, pid, first)
    number = _play_round(env, store, agg, pid, layout, rng, clones=0)
    agg.finalize_round(pid, number)
    result = verify_round(env.market, store, pid, number)
    assert result.ok, result.failed()
    check = next(c for c in result.checks if c.name == "rule re-solve")
    assert check.ok is True and "from 0 earlier round(s)" in check.detail


def _report_cid_and_state(agg, store, pid, number):
    """What the aggregator records just before its finalize transaction."""
    report, model, state = agg.compute_round(pid, number)
    store.put(model)
    return report, store.put(report.to_bytes()), state
