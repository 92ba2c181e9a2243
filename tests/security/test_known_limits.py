"""Known limits, pinned as tests so a change in behaviour is noticed (see SECURITY.md):
the contract checks the budget, the Merkle proofs and that a claimant revealed in the
round, not the amounts in the reward table."""

from __future__ import annotations

import hashlib

import pytest

from market.chain import ContractRevert, compute_commitment
from market.proofs import MerkleTree

REWARD = 10**18
ZERO = b"\0" * 32


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _revealed_round(env):
    m = env.market
    pid = env.create_project(rounds=1, reward_per_round=REWARD)
    rnd, _ = m.open_round(env.aggregator, pid, h("g"))
    t = env.trainers[0]
    m.commit_update(t, pid, rnd, compute_commitment(h("u"), t.address, h("s")))
    env.advance(101)
    m.reveal_update(t, pid, rnd, h("u"), h("s"))
    env.advance(101)
    return pid, rnd, t


def test_reward_table_cannot_pay_a_non_submitter(market_env):
    """Closed limit: only a trainer who revealed in the round can claim from its table."""
    env, m = market_env, market_env.market
    pid, rnd, honest = _revealed_round(env)
    tree = MerkleTree.of_rewards([(env.outsider.address, REWARD)])
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, REWARD)
    with pytest.raises(ContractRevert) as info:
        m.claim(env.outsider, pid, rnd, REWARD, tree.proof(0))
    assert info.value.error_name == "NotRevealed"
    assert m.get_round(pid, rnd).claimed == 0
    env.assert_escrow_balanced()


def test_aggregator_can_split_among_revealed_trainers_as_it_likes(market_env):
    """Still open: the contract cannot see scores, so the table may give one revealed
    trainer everything. Only `market verify` (re-execution) catches this."""
    env, m = market_env, market_env.market
    pid, rnd, favourite = _revealed_round(env)
    tree = MerkleTree.of_rewards([(favourite.address, REWARD)])
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, REWARD)
    m.claim(favourite, pid, rnd, REWARD, tree.proof(0))
    assert m.get_round(pid, rnd).claimed == REWARD
    env.assert_escrow_balanced()


def test_owner_colluding_aggregator_can_finalize_with_total_zero(market_env):
    env, m = market_env, market_env.market
    pid, rnd, honest = _revealed_round(env)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, ZERO, 0)
    assert m.get_project(pid).refundable == REWARD  # the whole round back to the owner
    m.refund(env.owner, pid)
    env.assert_escrow_balanced()


def test_total_above_the_table_locks_the_difference(market_env):
    env, m = market_env, market_env.market
    pid, rnd, honest = _revealed_round(env)
    tree = MerkleTree.of_rewards([(honest.address, REWARD // 2)])
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, REWARD)
    m.claim(honest, pid, rnd, REWARD // 2, tree.proof(0))
    assert m.get_project(pid).refundable == 0
    with pytest.raises(ContractRevert) as info:
        m.refund(env.owner, pid)
    assert info.value.error_name == "NothingToRefund"
    assert m.balance() - m.outstanding() == 0  # still owed on paper, claimable by nobody
    assert m.get_round(pid, rnd).unpaid == REWARD // 2
