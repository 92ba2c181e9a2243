"""A trainer claiming several finalized rounds at once: one claimMany, recorded per round."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from market.aggregator.service import Aggregator
from market.db import Claim, Database
from market.owner import Windows, create_project
from market.storage import EmbeddedStore
from market.trainer.client import TrainerClient
from market.trainer.data import dirichlet_split, load_digits
from market.trainer.model import ModelSpec

pytestmark = pytest.mark.slow


def test_claim_rounds_pays_every_owed_round_in_one_transaction(market_env, tmp_path):
    env, m = market_env, market_env.market
    store, db = EmbeddedStore(tmp_path / "store"), Database.at(tmp_path)
    created = create_project(
        m,
        store,
        env.owner,
        aggregator=env.aggregator.address,
        rounds=3,
        reward_per_round_wei=10**18,
        windows=Windows(submission=100, reveal=100, finalize=1000),
        name="claims",
        model=ModelSpec(hidden=(16,)),
        training={"epochs": 1, "lr": 0.1, "batch_size": 32},
    )
    pid = created.project_id
    agg = Aggregator(m, store, env.aggregator, db)
    trainers = [TrainerClient(m, store, a, db) for a in env.trainers[:3]]
    data = load_digits()
    parts = [data.subset(p) for p in dirichlet_split(data.y, 3, alpha=1.0, seed=0)]
    rewards: dict[tuple[int, int], int] = {}  # (trainer, round) -> wei
    for _ in range(3):
        number, _ = agg.open_round(pid)
        for i, trainer in enumerate(trainers):
            trainer.prepare(pid, number, parts[i], seed=i)
            trainer.commit(pid, number)
        r = m.get_round(pid, number)
        env.advance(r.commit_deadline - env.now() + 1)
        for trainer in trainers:
            trainer.reveal(pid, number)
        env.advance(r.reveal_deadline - env.now() + 1)
        agg.finalize_round(pid, number)
        for i, trainer in enumerate(trainers):
            rewards[(i, number)] = trainer.reward(pid, number)[0]

    # the trainer paid in the most rounds (scores decide who is paid); it claims its first
    # paid round alone, then asks for all three
    paid_rounds = [[n for n in (1, 2, 3) if rewards[(i, n)] > 0] for i in range(3)]
    i = max(range(3), key=lambda k: len(paid_rounds[k]))
    me, owed = trainers[i], paid_rounds[i]
    assert len(owed) == 3, rewards  # clean rounds: every honest trainer is paid
    first = me.claim(pid, owed[0])
    before = env.w3.eth.get_balance(me.address)
    results = me.claim_rounds(pid, [1, 2, 3])
    rest = owed[1:]
    assert [(c.round, c.amount_wei) for c in results] == [
        (n, rewards[(i, n)] if n in rest else 0) for n in (1, 2, 3)
    ]
    sent = [c.tx for c in results if c.tx is not None]
    assert len({t.tx_hash for t in sent}) == 1  # one claimMany for the rest
    tx = sent[0]
    assert [e["args"]["round"] for e in tx.events] == rest
    receipt = env.w3.eth.get_transaction_receipt(tx.tx_hash)
    fee = tx.gas_used * receipt["effectiveGasPrice"]
    gained = sum(rewards[(i, n)] for n in rest)
    assert env.w3.eth.get_balance(me.address) == before + gained - fee
    with db.session() as s:
        recorded = {c.round: (int(c.amount_wei), c.tx) for c in s.scalars(select(Claim))}
    assert recorded == {n: (rewards[(i, n)], tx.tx_hash) for n in rest} | {
        owed[0]: (rewards[(i, owed[0])], first.tx.tx_hash)
    }
    assert all(c.tx is None for c in me.claim_rounds(pid, [1, 2, 3]))  # nothing left
    # a single owed round goes through plain claim
    other = trainers[(i + 1) % 3]
    (only,) = other.claim_rounds(pid, [1])
    assert only.amount_wei == rewards[((i + 1) % 3, 1)]
    assert only.tx is None or [e["event"] for e in only.tx.events] == ["RewardClaimed"]
    env.assert_escrow_balanced()
