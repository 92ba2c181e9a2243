"""End-to-end flows on a real anvil: a paid round, an expired round, cancel and refund."""

from __future__ import annotations

from chain_helpers import digest, make_update

from market.chain import RoundState
from market.proofs import MerkleTree

REWARD = 10**18


def test_happy_path_round_pays_trainers_and_refunds_remainder(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=3, rounds=1, reward=REWARD)
    env.assert_escrow_balanced()

    r = m.get_round(pid, rnd)
    assert r.state == RoundState.OPEN and r.commits == 3 and r.reveals == 3
    for u in updates:
        s = m.get_submission(pid, rnd, u.trainer.address)
        assert s.revealed and s.update_digest == u.update_digest and s.commitment == u.commitment

    amounts = [REWARD // 2, REWARD // 4, REWARD // 8]  # total 7/8, 1/8 unallocated
    tree = MerkleTree.of_rewards(
        [(u.trainer.address, a) for u, a in zip(updates, amounts, strict=True)]
    )
    env.advance(101)  # past the reveal deadline
    result = m.finalize_round(
        env.aggregator, pid, rnd, digest("model1"), digest("report1"), tree.root, sum(amounts)
    )
    assert [e["event"] for e in result.events] == ["RoundFinalized"]
    assert result.events[0]["args"]["unallocated"] == REWARD - sum(amounts)
    r = m.get_round(pid, rnd)
    assert r.state == RoundState.FINALIZED and r.rewards_root == tree.root
    assert r.new_model == digest("model1") and r.report_digest == digest("report1")
    assert m.get_project(pid).refundable == REWARD - sum(amounts)
    env.assert_escrow_balanced()

    for u, amount in zip(updates, amounts, strict=True):
        before = env.w3.eth.get_balance(u.trainer.address)
        res = m.claim(u.trainer, pid, rnd, amount, tree.proof_for(u.trainer.address))
        fee = res.gas_used * env.w3.eth.get_transaction_receipt(res.tx_hash)["effectiveGasPrice"]
        assert env.w3.eth.get_balance(u.trainer.address) == before + amount - fee
        assert m.is_claimed(pid, rnd, u.trainer.address)
        env.assert_escrow_balanced()
    assert m.get_round(pid, rnd).claimed == sum(amounts)

    res = m.refund(env.owner, pid)
    assert res.events[0]["event"] == "Refunded"
    assert res.events[0]["args"]["amount"] == REWARD - sum(amounts)
    assert m.get_project(pid).refundable == 0
    assert m.balance() == 0
    env.assert_escrow_balanced()


def test_events_are_indexed_and_filterable(market_env, revealed_round):
    m = market_env.market
    pid, rnd, updates = revealed_round(n=2)
    created = m.events("ProjectCreated", project_id=pid)
    assert len(created) == 1 and created[0]["args"]["owner"] == market_env.owner.address
    revealed = m.events("UpdateRevealed", projectId=pid, trainer=updates[1].trainer.address)
    assert [e["args"]["update_digest"] for e in revealed] == [updates[1].update_digest]
    assert all(e["tx_hash"].startswith("0x") and e["block_number"] > 0 for e in revealed)
    assert len(m.events("UpdateCommitted", project_id=pid, round=rnd)) == 2


def test_multi_round_project_runs_to_the_end(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=2, rounds=2, reward=REWARD)
    env.advance(101)
    tree = MerkleTree.of_rewards([(updates[0].trainer.address, REWARD)])
    m.finalize_round(env.aggregator, pid, rnd, digest("m1"), digest("r1"), tree.root, REWARD)
    rnd2, _ = m.open_round(env.aggregator, pid, digest("m1"))
    assert rnd2 == 2 and m.get_project(pid).rounds_opened == 2
    u = make_update(env.trainers[0], "round2")
    m.commit_update(u.trainer, pid, rnd2, u.commitment)
    env.advance(101)
    m.reveal_update(u.trainer, pid, rnd2, u.update_digest, u.salt)
    env.advance(101)
    m.finalize_round(env.aggregator, pid, rnd2, digest("m2"), digest("r2"), b"\0" * 32, 0)
    assert m.get_project(pid).refundable == REWARD
    env.assert_escrow_balanced()
    m.claim(updates[0].trainer, pid, rnd, REWARD, tree.proof(0))
    m.refund(env.owner, pid)
    assert m.balance() == 0
