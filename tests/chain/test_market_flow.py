"""End-to-end flows on a real anvil: a paid round, an expired round, cancel and refund."""

from __future__ import annotations

from chain_helpers import digest, make_update

from market.chain import RoundState
from market.proofs import MerkleTree

REWARD = 10**18
ZERO32 = b"\0" * 32


def test_happy_path_round_pays_trainers_and_refunds_remainder(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=3, rounds=1, reward=REWARD)
    env.assert_escrow_balanced()

    r = m.get_round(pid, rnd)
    assert r.state == RoundState.OPEN and r.commits == 3 and r.reveals == 3
    for u in updates:
        s = m.get_submission(pid, rnd, u.trainer.address)
        assert s.revealed and not s.claimed and s.commitment == u.commitment[:28]
        assert m.revealed_digest(pid, rnd, u.trainer.address) == u.update_digest

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


def test_expired_round_splits_budget_equally_and_remainder_is_refundable(
    market_env, revealed_round
):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=3, rounds=1, reward=REWARD)
    env.advance(201)  # past the finalize deadline: the aggregator went missing
    result = m.expire_round(env.outsider, pid, rnd)  # anyone may expire
    share = REWARD // 3
    assert result.events[0]["event"] == "RoundExpired"
    assert result.events[0]["args"] == {
        "project_id": pid,
        "round": rnd,
        "reveals": 3,
        "share": share,
        "to_refund": REWARD - 3 * share,
    }
    r = m.get_round(pid, rnd)
    assert r.state == RoundState.EXPIRED and r.total == 3 * share
    env.assert_escrow_balanced()
    for u in updates[:2]:
        res = m.claim_expired(u.trainer, pid, rnd)
        assert res.events[0]["args"]["amount"] == share
        assert m.is_claimed(pid, rnd, u.trainer.address)
    env.assert_escrow_balanced()
    m.refund(env.owner, pid)  # only the division remainder
    assert m.balance() == share  # the third trainer's share stays claimable
    m.claim_expired(updates[2].trainer, pid, rnd)
    assert m.balance() == 0


def test_expired_round_without_reveals_refunds_whole_budget(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round(rounds=1)
    u = make_update(env.trainers[0])
    m.commit_update(u.trainer, pid, rnd, u.commitment)  # committed, never revealed
    env.advance(301)
    m.expire_round(env.outsider, pid, rnd)
    assert m.get_project(pid).refundable == REWARD
    m.refund(env.owner, pid)
    assert m.balance() == 0


def test_cancel_refunds_unopened_rounds_and_lets_open_round_finish(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=2, rounds=3, reward=REWARD)
    res = m.cancel_project(env.owner, pid)
    assert res.events[0]["event"] == "ProjectCancelled"
    assert res.events[0]["args"]["unopened_budget"] == 2 * REWARD
    p = m.get_project(pid)
    assert p.cancelled and p.refundable == 2 * REWARD
    env.assert_escrow_balanced()
    m.refund(env.owner, pid)  # cancelled: refundable now, while round 1 is still open
    env.assert_escrow_balanced()
    # the open round still finishes and pays its trainers
    env.advance(101)
    tree = MerkleTree.of_rewards([(updates[0].trainer.address, REWARD // 3)])
    m.finalize_round(env.aggregator, pid, rnd, digest("m"), digest("r"), tree.root, REWARD // 3)
    m.claim(updates[0].trainer, pid, rnd, REWARD // 3, tree.proof(0))
    m.refund(env.owner, pid)  # the finalized round's unallocated part
    assert m.balance() == 0


def test_cancel_before_any_round_refunds_everything(market_env):
    env, m = market_env, market_env.market
    pid = env.create_project(rounds=4, reward_per_round=REWARD)
    before = env.w3.eth.get_balance(env.owner.address)
    m.cancel_project(env.owner, pid)
    m.refund(env.owner, pid)
    assert m.balance() == 0
    assert env.w3.eth.get_balance(env.owner.address) > before + 4 * REWARD - 10**16


def test_escrow_invariant_across_many_projects(market_env):
    """Several projects in different states at once: balance == Σ obligations after each step."""
    env, m = market_env, market_env.market
    trainers = env.trainers
    pids = [env.create_project(rounds=2, reward_per_round=(i + 1) * REWARD) for i in range(3)]
    env.assert_escrow_balanced()
    rounds = {pid: m.open_round(env.aggregator, pid, digest(f"g{pid}"))[0] for pid in pids}
    updates = {pid: [make_update(t, str(pid)) for t in trainers[:3]] for pid in pids}
    for pid in pids:
        for u in updates[pid]:
            m.commit_update(u.trainer, pid, rounds[pid], u.commitment)
    env.advance(101)
    for pid in pids:
        for u in updates[pid][:2]:
            m.reveal_update(u.trainer, pid, rounds[pid], u.update_digest, u.salt)
    env.assert_escrow_balanced()
    env.advance(101)
    # project 1 finalized with a partial table, project 2 cancelled, project 3 expires
    p1, p2, p3 = pids
    budget1 = m.get_round(p1, rounds[p1]).budget
    entries = [(u.trainer.address, budget1 // 3) for u in updates[p1][:2]]
    tree = MerkleTree.of_rewards(entries)
    m.finalize_round(env.aggregator, p1, rounds[p1], ZERO32, ZERO32, tree.root, 2 * (budget1 // 3))
    m.cancel_project(env.owner, p2)
    env.assert_escrow_balanced()
    env.advance(101)
    m.expire_round(env.outsider, p3, rounds[p3])
    m.expire_round(env.outsider, p2, rounds[p2])
    env.assert_escrow_balanced()
    for i, (account, amount) in enumerate(entries):
        signer = next(t for t in trainers if t.address == account)
        m.claim(signer, p1, rounds[p1], amount, tree.proof(i))
        env.assert_escrow_balanced()
    for pid in (p2, p3):
        for u in updates[pid][:2]:
            m.claim_expired(u.trainer, pid, rounds[pid])
    m.refund(env.owner, p2)
    env.assert_escrow_balanced()
    assert m.balance() == m.outstanding() > 0  # p1 and p3 still have an unopened round


def test_local_commitment_equals_the_contracts(market_env):
    import random

    rng = random.Random(7)
    m = market_env.market
    for account in market_env.accounts:
        update, salt = rng.randbytes(32), rng.randbytes(32)
        on_chain = m.contract.functions.computeCommitment(update, account.address, salt).call()
        assert m.compute_commitment(update, account.address, salt) == bytes(on_chain)
