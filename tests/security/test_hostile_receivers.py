"""Hostile receivers: an account that reverts, burns all gas or return-bombs when paid,
as a trainer (claim, claimExpired) and as a project owner (refund). Each only ever fails
its own payment: the escrow stays balanced and everybody else is paid in full.
(Re-entry into claim/claimExpired/refund: tests/chain/test_reentrancy.py.)"""

from __future__ import annotations

import hashlib

import pytest

from market.chain import ContractRevert, compute_commitment
from market.proofs import MerkleTree
from tests.chain.chain_helpers import MarketActor

REWARD = 9 * 10**17
ZERO = b"\0" * 32
ACCEPT, REVERT, BURN, BOMB = 0, 1, 2, 3
HOSTILE = [REVERT, BURN, BOMB]


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


class Hostile(MarketActor):
    """The HostileReceiver: reverts, burns all gas or return-bombs when paid."""

    artifact = "HostileReceiver"

    def set_mode(self, mode: int) -> None:
        self._send(self.contract.functions.setMode(mode), "setMode")


def payment_refused(fn, *args) -> None:
    """The hostile receiver's own payment fails with TransferFailed, and nothing moves:
    the 1/64 of gas kept back by the call is enough to revert cleanly even after the
    receiver burnt the rest, and a return bomb only costs the claimant's own gas."""
    with pytest.raises(ContractRevert) as info:
        fn(*args)
    assert info.value.error_name == "TransferFailed", str(info.value)


def _round(env, hostile: Hostile, others: int = 2):
    """A round where the hostile contract and ``others`` EOAs commit and reveal."""
    m = env.market
    pid = env.create_project(rounds=1, reward_per_round=REWARD)
    rnd, _ = m.open_round(env.aggregator, pid, h("g"))
    hostile.call("commitUpdate", pid, rnd, compute_commitment(h("u"), hostile.address, h("s")), [])
    eoas = env.trainers[:others]
    for t in eoas:
        m.commit_update(t, pid, rnd, compute_commitment(h(t.address), t.address, h("s")))
    env.advance(101)
    hostile.call("revealUpdate", pid, rnd, h("u"), h("s"))
    for t in eoas:
        m.reveal_update(t, pid, rnd, h(t.address), h("s"))
    env.advance(101)
    return pid, rnd, eoas


@pytest.mark.parametrize("mode", HOSTILE, ids=["revert", "burn-gas", "return-bomb"])
def test_hostile_claimant_blocks_nobody(market_env, mode):
    env, m = market_env, market_env.market
    hostile = Hostile(env, env.trainers[6])
    pid, rnd, eoas = _round(env, hostile)
    share = REWARD // 3
    table = [(hostile.address, share)] + [(t.address, share) for t in eoas]
    tree = MerkleTree.of_rewards(table)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, 3 * share)
    hostile.set_mode(mode)
    m.claim(eoas[0], pid, rnd, share, tree.proof_for(eoas[0].address))
    payment_refused(hostile.call, "claim", pid, rnd, share, tree.proof_for(hostile.address))
    m.claim(eoas[1], pid, rnd, share, tree.proof_for(eoas[1].address))  # after the failure
    assert m.get_round(pid, rnd).claimed == 2 * share
    assert not m.is_claimed(pid, rnd, hostile.address)
    env.assert_escrow_balanced()
    # the hostile account's reward is still there for it once it accepts payment
    hostile.set_mode(ACCEPT)
    hostile.call("claim", pid, rnd, share, tree.proof_for(hostile.address))
    assert env.w3.eth.get_balance(hostile.address) == share
    env.assert_escrow_balanced()


@pytest.mark.parametrize("mode", HOSTILE, ids=["revert", "burn-gas", "return-bomb"])
def test_hostile_expired_share_claimant_blocks_nobody(market_env, mode):
    env, m = market_env, market_env.market
    hostile = Hostile(env, env.trainers[6])
    pid, rnd, eoas = _round(env, hostile)
    env.advance(101)
    m.expire_round(env.outsider, pid, rnd)
    hostile.set_mode(mode)
    payment_refused(hostile.call, "claimExpired", pid, rnd)
    for t in eoas:
        m.claim_expired(t, pid, rnd)
    assert m.get_round(pid, rnd).claimed == 2 * (REWARD // 3)
    env.assert_escrow_balanced()


@pytest.mark.parametrize("mode", HOSTILE, ids=["revert", "burn-gas", "return-bomb"])
def test_hostile_owner_cannot_block_trainers(market_env, mode):
    """A project owned by a hostile contract: its refund fails, its trainers are paid."""
    env, m = market_env, market_env.market
    owner = Hostile(env, env.trainers[6])
    result = owner.call(
        "createProject",
        h("spec"),
        env.aggregator.address,
        2,
        REWARD,
        100,
        100,
        100,
        value=2 * REWARD,
    )
    pid = result.events[0]["args"]["project_id"]
    rnd, _ = m.open_round(env.aggregator, pid, h("g"))
    t = env.trainers[0]
    m.commit_update(t, pid, rnd, compute_commitment(h("u"), t.address, h("s")))
    env.advance(101)
    m.reveal_update(t, pid, rnd, h("u"), h("s"))
    env.advance(101)
    tree = MerkleTree.of_rewards([(t.address, REWARD // 2)])
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, REWARD // 2)
    owner.set_mode(mode)
    owner.call("cancelProject", pid)
    payment_refused(owner.call, "refund", pid)
    m.claim(t, pid, rnd, REWARD // 2, tree.proof(0))
    assert m.get_project(pid).refundable == REWARD + REWARD // 2  # still the owner's
    env.assert_escrow_balanced()
    owner.set_mode(ACCEPT)
    owner.call("refund", pid)
    assert env.w3.eth.get_balance(owner.address) == REWARD + REWARD // 2
    assert m.balance() == m.outstanding()
