"""A contract trainer/owner that re-enters the market when paid, or refuses payment."""

from __future__ import annotations

import pytest
from chain_helpers import ContractActor, digest, expect_revert
from eth_utils import keccak

from market.chain import compute_commitment
from market.proofs import MerkleTree

REWARD = 10**18
ZERO = b"\0" * 32
GUARD_SELECTOR = keccak(text="ReentrancyGuardReentrantCall()")[:4]


def _actor_round(env, actor: ContractActor, others: int = 1):
    """Open a round where the actor contract and ``others`` EOAs commit and reveal."""
    pid = env.create_project(rounds=1, reward_per_round=REWARD)
    rnd, _ = env.market.open_round(env.aggregator, pid, digest("g"))
    upd, salt = digest("actor update"), digest("actor salt")
    actor.call("commitUpdate", pid, rnd, compute_commitment(upd, actor.address, salt), [])
    eoas = env.trainers[:others]
    for t in eoas:
        c = compute_commitment(digest(t.address), t.address, digest("s" + t.address))
        env.market.commit_update(t, pid, rnd, c)
    env.advance(101)
    actor.call("revealUpdate", pid, rnd, upd, salt)
    for t in eoas:
        env.market.reveal_update(t, pid, rnd, digest(t.address), digest("s" + t.address))
    return pid, rnd, eoas


@pytest.mark.parametrize("reentry", ["claim", "claimMany", "claimExpired", "refund"])
def test_claim_reentry_is_blocked(market_env, reentry):
    """Re-entering claim, or any other paying function (one guard for all), fails."""
    env, m = market_env, market_env.market
    actor = ContractActor(env, env.trainers[6])
    pid, rnd, eoas = _actor_round(env, actor)
    amounts = {actor.address: REWARD // 2, eoas[0].address: REWARD // 2}
    tree = MerkleTree.of_rewards(list(amounts.items()))
    env.advance(101)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, REWARD)

    proof = tree.proof_for(actor.address)
    reentry_args = {
        "claim": (pid, rnd, REWARD // 2, proof),
        "claimMany": (pid, [rnd], [REWARD // 2], [proof]),
        "claimExpired": (pid, rnd),
        "refund": (pid,),
    }[reentry]
    actor.set_mode(ContractActor.REENTER, reentry, *reentry_args)
    result = actor.call("claim", pid, rnd, REWARD // 2, proof)
    assert [e["event"] for e in result.events] == ["RewardClaimed"]
    assert actor.view("reentryAttempts") == 1
    assert actor.view("reentrySucceeded") is False
    assert bytes(actor.view("lastReentryError"))[:4] == GUARD_SELECTOR
    assert env.w3.eth.get_balance(actor.address) == REWARD // 2  # paid once, not twice
    assert m.get_round(pid, rnd).claimed == REWARD // 2
    env.assert_escrow_balanced()
    # a second claim outside the reentry is refused by the claimed flag
    expect_revert("AlreadyClaimed", actor.call, "claim", pid, rnd, REWARD // 2, proof)


def test_claim_many_reentry_is_blocked(market_env):
    """claimMany marks every round before its one transfer: re-entering claim fails."""
    env, m = market_env, market_env.market
    actor = ContractActor(env, env.trainers[6])
    pid, rnd, eoas = _actor_round(env, actor)
    tree = MerkleTree.of_rewards([(actor.address, REWARD // 2), (eoas[0].address, REWARD // 2)])
    env.advance(101)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, REWARD)
    proof = tree.proof_for(actor.address)
    actor.set_mode(ContractActor.REENTER, "claim", pid, rnd, REWARD // 2, proof)
    result = actor.call("claimMany", pid, [rnd], [REWARD // 2], [proof])
    assert [e["event"] for e in result.events] == ["RewardClaimed"]
    assert bytes(actor.view("lastReentryError"))[:4] == GUARD_SELECTOR
    assert env.w3.eth.get_balance(actor.address) == REWARD // 2
    env.assert_escrow_balanced()


def test_claim_expired_reentry_is_blocked(market_env):
    env, m = market_env, market_env.market
    actor = ContractActor(env, env.trainers[6])
    pid, rnd, _ = _actor_round(env, actor, others=2)
    env.advance(201)
    m.expire_round(env.outsider, pid, rnd)
    share = REWARD // 3
    assert m.get_project(pid).refundable == REWARD - 3 * share
    actor.set_mode(ContractActor.REENTER, "claimExpired", pid, rnd)
    actor.call("claimExpired", pid, rnd)
    assert bytes(actor.view("lastReentryError"))[:4] == GUARD_SELECTOR
    assert env.w3.eth.get_balance(actor.address) == share
    env.assert_escrow_balanced()


def test_refund_reentry_is_blocked(market_env):
    env, m = market_env, market_env.market
    actor = ContractActor(env, env.trainers[6])
    # the actor contract is the project owner
    result = actor.call(
        "createProject",
        digest("spec"),
        env.aggregator.address,
        2,
        REWARD,
        100,
        100,
        100,
        value=2 * REWARD,
    )
    pid = result.events[0]["args"]["project_id"]
    assert m.get_project(pid).owner == actor.address
    actor.call("cancelProject", pid)
    actor.set_mode(ContractActor.REENTER, "refund", pid)
    actor.call("refund", pid)
    assert bytes(actor.view("lastReentryError"))[:4] == GUARD_SELECTOR
    assert env.w3.eth.get_balance(actor.address) == 2 * REWARD
    env.assert_escrow_balanced()


def test_refused_payment_reverts_claim(market_env):
    env, m = market_env, market_env.market
    actor = ContractActor(env, env.trainers[6])
    pid, rnd, _ = _actor_round(env, actor)
    tree = MerkleTree.of_rewards([(actor.address, REWARD)])
    env.advance(101)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, REWARD)
    actor.set_mode(ContractActor.REJECT)
    exc = expect_revert("TransferFailed", actor.call, "claim", pid, rnd, REWARD, tree.proof(0))
    assert exc.args == (actor.address, REWARD)
    assert not m.is_claimed(pid, rnd, actor.address)  # the whole claim rolled back
    actor.set_mode(ContractActor.ACCEPT)
    actor.call("claim", pid, rnd, REWARD, tree.proof(0))
    assert env.w3.eth.get_balance(actor.address) == REWARD


def test_refused_payment_reverts_claim_expired_and_refund(market_env):
    env, m = market_env, market_env.market
    actor = ContractActor(env, env.trainers[6])
    pid, rnd, _ = _actor_round(env, actor, others=0)
    env.advance(201)
    m.expire_round(env.outsider, pid, rnd)
    actor.set_mode(ContractActor.REJECT)
    expect_revert("TransferFailed", actor.call, "claimExpired", pid, rnd)

    owned = actor.call(
        "createProject", digest("spec"), env.aggregator.address, 1, REWARD, 1, 1, 1, value=REWARD
    )
    owned_pid = owned.events[0]["args"]["project_id"]
    actor.call("cancelProject", owned_pid)
    expect_revert("TransferFailed", actor.call, "refund", owned_pid)
    assert m.get_project(owned_pid).refundable == REWARD
    env.assert_escrow_balanced()
