"""The round service on a real anvil and a real embedded store, with misbehaving trainers."""

from __future__ import annotations

import secrets

import numpy as np
import pytest
from safetensors.numpy import save

from market.aggregator.report import RoundReport
from market.aggregator.rules import get_rule
from market.aggregator.service import Aggregator, layout_of
from market.chain import RoundState
from market.db import Database
from market.errors import AggregationError
from market.owner import Windows, create_project
from market.storage import EmbeddedStore, encode_update
from market.storage.cid import cid_of, digest_of_cid
from market.trainer.client import TrainerClient
from market.trainer.data import dirichlet_split, load_digits
from market.trainer.model import ModelSpec

WINDOWS = Windows(submission=100, reveal=100, finalize=1000)
SMALL = ModelSpec(hidden=(16,))

pytestmark = pytest.mark.slow


@pytest.fixture(params=["fedavg"])
def world(market_env, tmp_path, request):
    store = EmbeddedStore(tmp_path / "store")
    db = Database.at(tmp_path)
    created = create_project(
        market_env.market,
        store,
        market_env.owner,
        aggregator=market_env.aggregator.address,
        rounds=2,
        reward_per_round_wei=10**18,
        windows=WINDOWS,
        name="t",
        model=SMALL,
        training={"epochs": 1, "lr": 0.1, "batch_size": 32},
        max_update_bytes=200_000,
        rule=request.param,
    )
    agg = Aggregator(market_env.market, store, market_env.aggregator, db)
    trainers = [TrainerClient(market_env.market, store, a, db) for a in market_env.trainers[:3]]
    data = load_digits()
    parts = dirichlet_split(data.y, 3, alpha=1.0, seed=0)
    return market_env, store, created, agg, trainers, [data.subset(p) for p in parts]


def commit_raw(env, store, account, project_id, round_number, blob: bytes, upload: bool = True):
    """A hand-rolled submission: commit to arbitrary bytes, then publish and reveal them."""
    salt = secrets.token_bytes(32)
    digest = digest_of_cid(cid_of(blob))
    market = env.market
    market.commit_update(
        account,
        project_id,
        round_number,
        market.compute_commitment(digest, account.address, salt),
        [],
    )
    return lambda: (
        store.put(blob) if upload else None,
        market.reveal_update(account, project_id, round_number, digest, salt),
    )


def run_round(env, agg, trainers, parts, project_id, bad=()):
    number, _ = agg.open_round(project_id)
    for i, trainer in enumerate(trainers):
        trainer.prepare(project_id, number, parts[i], seed=i)
        trainer.commit(project_id, number)
    reveals = [make(number) for make in bad]
    chain_round = env.market.get_round(project_id, number)
    env.advance(chain_round.commit_deadline - env.now() + 1)
    for trainer in trainers:
        trainer.reveal(project_id, number)
    for reveal in reveals:
        reveal()
    env.advance(chain_round.reveal_deadline - env.now() + 1)
    return number, agg.finalize_round(project_id, number)


def test_clean_round_pays_every_trainer_and_is_deterministic(world):
    env, store, created, agg, trainers, parts = world
    number, outcome = run_round(env, agg, trainers, parts, created.project_id)
    report = outcome.report
    assert [s.status for s in report.submissions] == ["accepted"] * 3
    assert 0 < report.total_wei <= 10**18 and 10**18 - report.total_wei < 3
    assert all(s.reward_wei > 0 for s in report.submissions)
    chain_round = env.market.get_round(created.project_id, number)
    assert chain_round.state == RoundState.FINALIZED
    assert chain_round.new_model == digest_of_cid(outcome.model_cid)
    assert store.get(outcome.report_cid) == report.to_bytes()
    # re-execution from chain + store gives the very same bytes
    again, model_bytes, _ = agg.compute_round(created.project_id, number)
    assert again.to_bytes() == report.to_bytes()
    assert cid_of(model_bytes) == outcome.model_cid
    # finalizing again only reconciles: no second transaction
    assert agg.finalize_round(created.project_id, number).finalize_tx is None
    for trainer in trainers:
        assert trainer.claim(created.project_id, number).amount_wei > 0
        assert trainer.claim(created.project_id, number).tx is None  # already claimed
    env.assert_escrow_balanced()


def _bad_updates(layout):
    rng = np.random.default_rng(0)
    good = {n: rng.normal(size=s).astype(np.float32) for n, s in layout.entries}
    other = layout_of_hidden(8)
    wrong_shape = encode_update(
        {n: rng.normal(size=s).astype(np.float32) for n, s in other.entries}, other, seed=0
    )
    nan_tensors = {n: np.ones(s, np.int8) for n, s in layout.entries}
    nan_tensors["__scales__"] = np.full(layout.num_blocks, np.nan, np.float32)
    meta = {
        "format": "market-update/1",
        "block_size": "1024",
        "tensor_order": ",".join(layout.names),
    }
    zero = encode_update({n: np.zeros(s, np.float32) for n, s in layout.entries}, layout, seed=0)
    return {
        "wrong_shape": wrong_shape,
        "non_finite": save(nan_tensors, metadata=meta),
        "free_rider": zero,
        "too_large": encode_update(good, layout, seed=0) + b"\0" * 200_000,
    }


def layout_of_hidden(width: int):
    from market.storage import ModelLayout
    from market.trainer.model import build_model, get_weights

    return ModelLayout.from_tensors(get_weights(build_model(ModelSpec(hidden=(width,)))))


def test_malformed_updates_are_rejected_with_reasons_and_the_round_still_pays(world):
    env, store, created, agg, trainers, parts = world
    layout = layout_of(created.spec)
    bad = _bad_updates(layout)
    attackers = [*env.trainers[3:], env.outsider]  # accounts no honest trainer uses
    assert len(attackers) == len(bad) + 1
    makers = [
        (lambda number, a=a, blob=blob: commit_raw(env, store, a, created.project_id, number, blob))
        for a, blob in zip(attackers, bad.values(), strict=False)
    ]
    # one more attacker reveals a digest whose bytes it never publishes
    makers.append(
        lambda number: commit_raw(
            env, store, attackers[-1], created.project_id, number, b"never uploaded", upload=False
        )
    )
    _, outcome = run_round(env, agg, trainers, parts, created.project_id, bad=makers)
    by_trainer = {s.trainer: s for s in outcome.report.submissions}
    for account, reason in zip(attackers, [*bad, "unavailable"], strict=True):
        entry = by_trainer[account.address]
        assert entry.status == "rejected" and entry.reward_wei == 0
        assert entry.reason.startswith(reason), (reason, entry.reason)
    honest = [by_trainer[t.address] for t in trainers]
    assert all(s.status == "accepted" and s.reward_wei > 0 for s in honest)
    assert sum(s.reward_wei for s in honest) == outcome.report.total_wei


def test_silent_trainers_do_not_block_the_round(world):
    env, store, created, agg, trainers, parts = world
    number, _ = agg.open_round(created.project_id)
    trainers[0].prepare(created.project_id, number, parts[0], seed=0)
    trainers[0].commit(created.project_id, number)
    trainers[1].prepare(created.project_id, number, parts[1], seed=1)
    trainers[1].commit(created.project_id, number)  # commits but never reveals
    chain_round = env.market.get_round(created.project_id, number)
    env.advance(chain_round.commit_deadline - env.now() + 1)
    trainers[0].reveal(created.project_id, number)
    env.advance(chain_round.reveal_deadline - env.now() + 1)
    outcome = agg.finalize_round(created.project_id, number)
    assert [s.trainer for s in outcome.report.submissions] == [trainers[0].address]
    assert outcome.report.total_wei == 10**18  # the only revealer takes the round


def test_round_without_reveals_finalizes_with_nothing_paid(world):
    env, store, created, agg, trainers, parts = world
    number, _ = agg.open_round(created.project_id)
    chain_round = env.market.get_round(created.project_id, number)
    env.advance(chain_round.reveal_deadline - env.now() + 1)
    outcome = agg.finalize_round(created.project_id, number)
    assert outcome.report.total_wei == 0 and outcome.report.submissions == []
    assert outcome.model_cid == created.spec.initial_model  # nothing learnt, same model
    assert env.market.get_project(created.project_id).refundable == 10**18


def test_finalize_refuses_a_round_that_is_not_open(world):
    env, store, created, agg, trainers, parts = world
    with pytest.raises(AggregationError, match="not open"):
        agg.finalize_round(created.project_id, 1)


def test_report_and_rewards_survive_a_store_round_trip(world):
    env, store, created, agg, trainers, parts = world
    number, outcome = run_round(env, agg, trainers, parts, created.project_id)
    report = RoundReport.from_bytes(store.get(outcome.report_cid))
    amount, proof = trainers[0].reward(created.project_id, number)
    assert amount == dict(report.rewards())[trainers[0].address] and proof


@pytest.mark.parametrize("world", ["sybilwall"], indirect=True)
def test_rule_history_survives_a_crash_before_and_after_finalize(world):
    """SybilWall's per-trainer history is recorded with the round, before the transaction:
    recomputing a round after a crash starts from the same history, and the next round
    sees this one's."""
    env, store, created, agg, trainers, parts = world
    pid = created.project_id
    run_round(env, agg, trainers, parts, pid)  # round 1 finalized: history now covers it
    number, _ = agg.open_round(pid)
    for i, trainer in enumerate(trainers):
        trainer.prepare(pid, number, parts[i], seed=10 + i)
        trainer.commit(pid, number)
    chain_round = env.market.get_round(pid, number)
    env.advance(chain_round.commit_deadline - env.now() + 1)
    for trainer in trainers:
        trainer.reveal(pid, number)
    env.advance(chain_round.reveal_deadline - env.now() + 1)
    first, _, state = agg.compute_round(pid, number)
    assert state is not None
    # crash after recording the outcome, before the transaction: recompute is identical
    agg._record(pid, number, first, "bafk-not-sent", state)
    again, _, again_state = agg.compute_round(pid, number)
    assert again.to_bytes() == first.to_bytes() and again_state == state
    outcome = agg.finalize_round(pid, number)
    assert outcome.report.to_bytes() == first.to_bytes()
    assert agg._load_state(pid, number + 1, get_rule("sybilwall")) == state


def test_update_norm_matches_the_dense_norm():
    from market.aggregator.service import update_norm
    from market.storage import quantize

    rng = np.random.default_rng(3)
    for d in (1, 1023, 1024, 5000):
        update = quantize(rng.normal(size=d) * 1e-3, 0)
        assert update_norm(update) == pytest.approx(np.linalg.norm(update.dense()), rel=1e-12)
