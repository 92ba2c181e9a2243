"""Every revert path of LearningMarket, asserting the custom error's name (and args)."""

from __future__ import annotations

import pytest
from chain_helpers import digest, expect_revert, make_update

from market.chain import set_next_block_timestamp
from market.proofs import MerkleTree

REWARD = 10**18
ZERO = b"\0" * 32
MISSING = 999


# ------------------------------------------------------------ createProject


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"aggregator": "0x" + "00" * 20}, "ZeroAddress"),
        ({"rounds": 0}, "ZeroRounds"),
        ({"reward_per_round": 0}, "ZeroReward"),
        ({"submission_window": 0}, "ZeroWindow"),
        ({"reveal_window": 0}, "ZeroWindow"),
        ({"finalize_window": 0}, "ZeroWindow"),
        ({"submission_window": 365 * 86400 + 1}, "WindowTooLong"),
        ({"reveal_window": 2**64 - 1}, "WindowTooLong"),
        ({"finalize_window": 365 * 86400 + 1}, "WindowTooLong"),
    ],
)
def test_create_project_rejects_bad_terms(market_env, kwargs, error):
    args = {
        "spec_digest": digest("spec"),
        "aggregator": market_env.aggregator.address,
        "rounds": 2,
        "reward_per_round": REWARD,
        "submission_window": 100,
        "reveal_window": 100,
        "finalize_window": 100,
    } | kwargs
    expect_revert(error, market_env.market.create_project, market_env.owner, **args)
    assert market_env.market.project_count() == 0


def test_create_project_caps_the_reward_below_2_to_128(market_env):
    """Round totals are stored in 128 bits; the cap makes that lossless."""
    env, m = market_env, market_env.market
    terms = (digest("spec"), env.aggregator.address, 1)
    exc = expect_revert(
        "RewardTooLarge", m.create_project, env.owner, *terms, 2**128, 100, 100, 100, value=0
    )
    assert exc.args == (2**128, 2**128 - 1)
    # one wei less passes the cap and fails only on the budget sent (anvil cannot fund
    # 2^128 wei: its transaction checks refuse such values)
    exc = expect_revert(
        "WrongBudget", m.create_project, env.owner, *terms, 2**128 - 1, 100, 100, 100, value=0
    )
    assert exc.args == (2**128 - 1, 0)


@pytest.mark.parametrize("value", [2 * REWARD - 1, 2 * REWARD + 1, 0])
def test_create_project_requires_the_exact_budget(market_env, value):
    m = market_env.market
    exc = expect_revert(
        "WrongBudget",
        m.create_project,
        market_env.owner,
        digest("spec"),
        market_env.aggregator.address,
        2,
        REWARD,
        100,
        100,
        100,
        value=value,
    )
    assert exc.args == (2 * REWARD, value)


# --------------------------------------------------------------- unknown ids


def test_unknown_project_everywhere(market_env):
    env, m = market_env, market_env.market
    t = env.trainers[0]
    calls = [
        (m.open_round, env.aggregator, MISSING, digest("g")),
        (m.finalize_round, env.aggregator, MISSING, 1, ZERO, ZERO, ZERO, 0),
        (m.expire_round, t, MISSING, 1),
        (m.cancel_project, env.owner, MISSING),
        (m.refund, env.owner, MISSING),
        (m.get_project, MISSING),
        (m.get_round, MISSING, 1),
        (m.get_submission, MISSING, 1, t.address),
    ]
    for fn, *args in calls:
        exc = expect_revert("UnknownProject", fn, *args)
        assert exc.args == (MISSING,)
    # the trainer's calls skip the project read (gas): an unknown project has no open or
    # settled round, and the round check names it
    trainer_calls = [
        ("RoundNotOpen", m.commit_update, t, MISSING, 1, digest("c")),
        ("RoundNotOpen", m.reveal_update, t, MISSING, 1, digest("u"), digest("s")),
        ("RoundNotFinalized", m.claim, t, MISSING, 1, 1, []),
        ("RoundNotFinalized", m.claim_many, t, MISSING, [(1, 1, [])]),
        ("RoundNotExpired", m.claim_expired, t, MISSING, 1),
    ]
    for error, fn, *args in trainer_calls:
        assert expect_revert(error, fn, *args).args == (MISSING, 1)
    assert m.is_claimed(MISSING, 1, t.address) is False  # plain view, no revert


# ----------------------------------------------------------------- openRound


def test_open_round_only_by_aggregator(market_env):
    pid = market_env.create_project()
    for who in (market_env.owner, market_env.trainers[0]):
        exc = expect_revert("NotAggregator", market_env.market.open_round, who, pid, digest("g"))
        assert exc.args == (who.address,)


def test_open_round_needs_previous_round_settled(market_env, open_round):
    pid, rnd = open_round()
    exc = expect_revert(
        "PreviousRoundNotSettled",
        market_env.market.open_round,
        market_env.aggregator,
        pid,
        digest("g"),
    )
    assert exc.args == (pid, rnd)


def test_open_round_after_all_rounds_used(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round(rounds=1)
    env.advance(301)
    m.expire_round(env.outsider, pid, rnd)
    expect_revert("NoRoundsLeft", m.open_round, env.aggregator, pid, digest("g"))


def test_open_round_refused_once_cancelled(market_env):
    pid = market_env.create_project()
    market_env.market.cancel_project(market_env.owner, pid)
    expect_revert(
        "ProjectIsCancelled",
        market_env.market.open_round,
        market_env.aggregator,
        pid,
        digest("g"),
    )


# -------------------------------------------------------------- commitUpdate


def test_commit_requires_an_open_round(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid = env.create_project()
    u = make_update(env.trainers[0])
    for rnd in (0, 1, 2):  # round 0 never exists, 1..2 not opened yet
        exc = expect_revert("RoundNotOpen", m.commit_update, u.trainer, pid, rnd, u.commitment)
        assert exc.args == (pid, rnd)
    # a finalized round is not open either
    pid2, rnd2, _ = revealed_round(n=1)
    env.advance(101)
    m.finalize_round(env.aggregator, pid2, rnd2, ZERO, ZERO, ZERO, 0)
    late = make_update(env.trainers[5])
    expect_revert("RoundNotOpen", m.commit_update, late.trainer, pid2, rnd2, late.commitment)


def test_commit_window_boundary(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round()
    deadline = m.get_round(pid, rnd).commit_deadline
    first, late = make_update(env.trainers[0]), make_update(env.trainers[1])
    set_next_block_timestamp(env.w3, deadline)
    m.commit_update(first.trainer, pid, rnd, first.commitment)  # at the deadline: accepted
    env.advance(1)
    exc = expect_revert(
        "CommitWindowClosed", m.commit_update, late.trainer, pid, rnd, late.commitment
    )
    assert exc.args == (deadline,)


def test_commit_rejects_zero_and_duplicate(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round()
    u = make_update(env.trainers[0])
    expect_revert("ZeroCommitment", m.commit_update, u.trainer, pid, rnd, ZERO)
    # only the first 28 bytes are stored: a zero prefix would read as "not committed"
    expect_revert("ZeroCommitment", m.commit_update, u.trainer, pid, rnd, ZERO[:28] + b"\1" * 4)
    m.commit_update(u.trainer, pid, rnd, u.commitment)
    other = make_update(env.trainers[0], "second")
    exc = expect_revert("AlreadyCommitted", m.commit_update, u.trainer, pid, rnd, other.commitment)
    assert exc.args == (u.trainer.address,)
    assert m.get_round(pid, rnd).commits == 1


def test_commit_admission_proof(market_env, open_round):
    env, m = market_env, market_env.market
    admitted = [t.address for t in env.trainers[:3]]
    tree = MerkleTree.of_addresses(admitted)
    pid, rnd = open_round(root=tree.root)
    outsider = make_update(env.outsider)
    exc = expect_revert(
        "NotAdmitted", m.commit_update, outsider.trainer, pid, rnd, outsider.commitment, []
    )
    assert exc.args == (env.outsider.address,)
    # someone else's proof does not admit the outsider either
    expect_revert(
        "NotAdmitted",
        m.commit_update,
        outsider.trainer,
        pid,
        rnd,
        outsider.commitment,
        tree.proof_for(admitted[0]),
    )
    # an admitted trainer with a wrong (empty) proof is refused, with the right one accepted
    ok = make_update(env.trainers[1])
    expect_revert("NotAdmitted", m.commit_update, ok.trainer, pid, rnd, ok.commitment, [])
    m.commit_update(ok.trainer, pid, rnd, ok.commitment, tree.proof_for(ok.trainer.address))
    assert m.get_submission(pid, rnd, ok.trainer.address).commitment == ok.commitment[:28]


def test_single_admitted_trainer_needs_empty_proof(market_env, open_round):
    env, m = market_env, market_env.market
    tree = MerkleTree.of_addresses([env.trainers[0].address])
    pid, rnd = open_round(root=tree.root)
    u = make_update(env.trainers[0])
    m.commit_update(u.trainer, pid, rnd, u.commitment, tree.proof(0))
    assert tree.proof(0) == []


# -------------------------------------------------------------- revealUpdate


def test_reveal_window_boundaries(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round()
    r = m.get_round(pid, rnd)
    a, b = make_update(env.trainers[0]), make_update(env.trainers[1])
    for u in (a, b):
        m.commit_update(u.trainer, pid, rnd, u.commitment)
    exc = expect_revert(
        "RevealWindowNotOpen", m.reveal_update, a.trainer, pid, rnd, a.update_digest, a.salt
    )
    assert exc.args == (r.commit_deadline,)
    env.advance(r.commit_deadline - env.now() + 1)  # into the reveal window
    set_next_block_timestamp(env.w3, r.reveal_deadline)
    m.reveal_update(a.trainer, pid, rnd, a.update_digest, a.salt)  # at the deadline: accepted
    env.advance(1)
    exc = expect_revert(
        "RevealWindowClosed", m.reveal_update, b.trainer, pid, rnd, b.update_digest, b.salt
    )
    assert exc.args == (r.reveal_deadline,)
    assert m.get_round(pid, rnd).reveals == 1


def test_reveal_requires_commit_and_matching_values(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round()
    honest, copier = make_update(env.trainers[0]), make_update(env.trainers[1])
    m.commit_update(honest.trainer, pid, rnd, honest.commitment)
    # a free-rider copies the honest commitment: it is bound to the honest trainer's address
    m.commit_update(copier.trainer, pid, rnd, honest.commitment)
    env.advance(101)
    stranger = make_update(env.trainers[2])
    exc = expect_revert(
        "NotCommitted",
        m.reveal_update,
        stranger.trainer,
        pid,
        rnd,
        stranger.update_digest,
        stranger.salt,
    )
    assert exc.args == (stranger.trainer.address,)
    args = (pid, rnd, honest.update_digest)
    exc = expect_revert("CommitmentMismatch", m.reveal_update, copier.trainer, *args, honest.salt)
    assert exc.args[0] == honest.commitment[:28] + b"\0" * 4  # the stored 224-bit prefix
    expect_revert("CommitmentMismatch", m.reveal_update, honest.trainer, *args, digest("bad salt"))
    expect_revert(
        "CommitmentMismatch",
        m.reveal_update,
        honest.trainer,
        pid,
        rnd,
        digest("other update"),
        honest.salt,
    )
    m.reveal_update(honest.trainer, *args, honest.salt)
    expect_revert("AlreadyRevealed", m.reveal_update, honest.trainer, *args, honest.salt)


def test_reveal_requires_open_round(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=1)
    late = make_update(env.trainers[3])
    env.advance(201)
    m.expire_round(env.outsider, pid, rnd)
    exc = expect_revert(
        "RoundNotOpen", m.reveal_update, late.trainer, pid, rnd, late.update_digest, late.salt
    )
    assert exc.args == (pid, rnd)


# ------------------------------------------------------------- finalizeRound


def test_finalize_rules(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, _ = revealed_round(n=1)  # clock inside the reveal window
    r = m.get_round(pid, rnd)
    fin = (pid, rnd, digest("m"), digest("r"), digest("root"))
    exc = expect_revert("NotAggregator", m.finalize_round, env.owner, *fin, 1)
    assert exc.args == (env.owner.address,)
    exc = expect_revert("FinalizeTooEarly", m.finalize_round, env.aggregator, *fin, 1)
    assert exc.args == (r.reveal_deadline,)
    env.advance(101)
    exc = expect_revert("TotalExceedsBudget", m.finalize_round, env.aggregator, *fin, REWARD + 1)
    assert exc.args == (REWARD + 1, REWARD)
    expect_revert("RoundNotOpen", m.finalize_round, env.aggregator, pid, rnd + 1, *fin[2:], 0)
    m.finalize_round(env.aggregator, *fin, REWARD)  # the whole budget is allowed
    expect_revert("RoundNotOpen", m.finalize_round, env.aggregator, *fin, REWARD)
    env.assert_escrow_balanced()


def test_finalize_too_early_during_commit_window(market_env, open_round):
    pid, rnd = open_round()
    expect_revert(
        "FinalizeTooEarly",
        market_env.market.finalize_round,
        market_env.aggregator,
        pid,
        rnd,
        ZERO,
        ZERO,
        ZERO,
        0,
    )


def test_finalize_deadline_boundary(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round()
    r = m.get_round(pid, rnd)
    env.advance(r.finalize_deadline - env.now() + 1)
    exc = expect_revert(
        "FinalizeTooLate", m.finalize_round, env.aggregator, pid, rnd, ZERO, ZERO, ZERO, 0
    )
    assert exc.args == (r.finalize_deadline,)


def test_finalize_at_the_deadline_is_accepted(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd = open_round()
    r = m.get_round(pid, rnd)
    env.advance(r.reveal_deadline - env.now() + 1)
    set_next_block_timestamp(env.w3, r.finalize_deadline)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, ZERO, 0)
    assert m.get_project(pid).refundable == REWARD


# --------------------------------------------------------------------- claim


def _finalized(env, revealed_round, amounts, total=None):
    pid, rnd, updates = revealed_round(n=len(amounts))
    tree = MerkleTree.of_rewards(
        [(u.trainer.address, a) for u, a in zip(updates, amounts, strict=True)]
    )
    env.advance(101)
    env.market.finalize_round(
        env.aggregator,
        pid,
        rnd,
        digest("m"),
        digest("r"),
        tree.root,
        sum(amounts) if total is None else total,
    )
    return pid, rnd, updates, tree


def test_claim_requires_finalized_round(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=1)
    t = updates[0].trainer
    exc = expect_revert("RoundNotFinalized", m.claim, t, pid, rnd, 1, [])
    assert exc.args == (pid, rnd)
    expect_revert("RoundNotFinalized", m.claim, t, pid, rnd + 1, 1, [])
    env.advance(201)
    m.expire_round(env.outsider, pid, rnd)
    expect_revert("RoundNotFinalized", m.claim, t, pid, rnd, 1, [])


def test_claim_proof_checks(market_env, revealed_round):
    env, m = market_env, market_env.market
    amounts = [REWARD // 2, REWARD // 4, REWARD // 4]
    pid, rnd, updates, tree = _finalized(env, revealed_round, amounts)
    a, b = updates[0].trainer, updates[1].trainer
    proof_a = tree.proof_for(a.address)
    expect_revert("InvalidProof", m.claim, a, pid, rnd, amounts[0] + 1, proof_a)
    expect_revert("InvalidProof", m.claim, a, pid, rnd, amounts[0], tree.proof_for(b.address))
    expect_revert("InvalidProof", m.claim, b, pid, rnd, amounts[0], proof_a)  # a's leaf, b calls
    expect_revert("NotRevealed", m.claim, env.outsider, pid, rnd, amounts[0], proof_a)
    expect_revert("InvalidProof", m.claim, a, pid, rnd, amounts[0], [])
    m.claim(a, pid, rnd, amounts[0], proof_a)
    exc = expect_revert("AlreadyClaimed", m.claim, a, pid, rnd, amounts[0], proof_a)
    assert exc.args == (a.address,)
    env.assert_escrow_balanced()


def _revealer_and_committer(env, open_round):
    """A fresh round where trainer 0 committed and revealed and trainer 1 only committed;
    the clock sits in the reveal window. Returns (project, round, revealer, committer)."""
    m = env.market
    pid, rnd = open_round()
    revealer, committer = make_update(env.trainers[0]), make_update(env.trainers[1])
    for u in (revealer, committer):
        m.commit_update(u.trainer, pid, rnd, u.commitment)
    env.advance(101)
    m.reveal_update(revealer.trainer, pid, rnd, revealer.update_digest, revealer.salt)
    return pid, rnd, revealer, committer


def test_claim_only_by_a_revealed_submitter(market_env, open_round):
    """The reward table cannot pay an account that did not reveal in the round: neither a
    trainer who only committed nor an outsider, even with a valid leaf and proof."""
    env, m = market_env, market_env.market
    pid, rnd, revealer, committer = _revealer_and_committer(env, open_round)
    env.advance(101)
    payees = [revealer.trainer, committer.trainer, env.outsider]
    tree = MerkleTree.of_rewards([(t.address, 10) for t in payees])
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, 30)
    for t in payees[1:]:
        exc = expect_revert("NotRevealed", m.claim, t, pid, rnd, 10, tree.proof_for(t.address))
        assert exc.args == (t.address,)
    m.claim(revealer.trainer, pid, rnd, 10, tree.proof_for(revealer.trainer.address))
    env.assert_escrow_balanced()


def test_claims_never_exceed_the_published_total(market_env, revealed_round):
    env, m = market_env, market_env.market
    # a faulty aggregator posts a table summing to more than the total it declares
    amounts = [REWARD // 2, REWARD // 2]
    pid, rnd, updates, tree = _finalized(env, revealed_round, amounts, total=REWARD // 2 + 7)
    a, b = updates[0].trainer, updates[1].trainer
    m.claim(a, pid, rnd, amounts[0], tree.proof_for(a.address))
    exc = expect_revert(
        "ClaimExceedsTotal", m.claim, b, pid, rnd, amounts[1], tree.proof_for(b.address)
    )
    assert exc.args == (amounts[1], 7)
    env.assert_escrow_balanced()


# --------------------------------------------------------- expireRound & co


def test_expire_round_rules(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, updates = revealed_round(n=2)
    r = m.get_round(pid, rnd)
    exc = expect_revert("RoundNotExpirable", m.expire_round, env.outsider, pid, rnd)
    assert exc.args == (r.finalize_deadline,)
    set_next_block_timestamp(env.w3, r.finalize_deadline)
    env.advance(0)
    expect_revert("RoundNotExpirable", m.expire_round, env.outsider, pid, rnd)  # still in time
    expect_revert("RoundNotOpen", m.expire_round, env.outsider, pid, rnd + 1)
    expect_revert("RoundNotExpired", m.claim_expired, updates[0].trainer, pid, rnd)
    env.advance(1)
    m.expire_round(env.outsider, pid, rnd)
    expect_revert("RoundNotOpen", m.expire_round, env.outsider, pid, rnd)


def test_claim_expired_rules(market_env, open_round):
    env, m = market_env, market_env.market
    pid, rnd, revealer, committer = _revealer_and_committer(env, open_round)
    env.advance(201)
    m.expire_round(env.outsider, pid, rnd)
    exc = expect_revert("NotRevealed", m.claim_expired, committer.trainer, pid, rnd)
    assert exc.args == (committer.trainer.address,)
    expect_revert("NotRevealed", m.claim_expired, env.outsider, pid, rnd)
    m.claim_expired(revealer.trainer, pid, rnd)
    expect_revert("AlreadyClaimed", m.claim_expired, revealer.trainer, pid, rnd)
    env.assert_escrow_balanced()


def test_finalized_round_is_not_expirable_nor_expired(market_env, revealed_round):
    env, m = market_env, market_env.market
    amounts = [REWARD]
    pid, rnd, updates, _ = _finalized(env, revealed_round, amounts)
    env.advance(500)
    expect_revert("RoundNotOpen", m.expire_round, env.outsider, pid, rnd)
    expect_revert("RoundNotExpired", m.claim_expired, updates[0].trainer, pid, rnd)


# ------------------------------------------------------ cancelProject, refund


def test_cancel_rules(market_env):
    env, m = market_env, market_env.market
    pid = env.create_project()
    for who in (env.aggregator, env.trainers[0]):
        exc = expect_revert("NotOwner", m.cancel_project, who, pid)
        assert exc.args == (who.address,)
    m.cancel_project(env.owner, pid)
    expect_revert("ProjectIsCancelled", m.cancel_project, env.owner, pid)


def test_refund_rules(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, _ = revealed_round(n=1, rounds=2)
    expect_revert("NotOwner", m.refund, env.aggregator, pid)
    expect_revert("ProjectNotEnded", m.refund, env.owner, pid)  # rounds left
    env.advance(101)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, ZERO, REWARD)
    expect_revert("ProjectNotEnded", m.refund, env.owner, pid)  # round 2 not opened
    m.open_round(env.aggregator, pid, digest("g2"))
    expect_revert("ProjectNotEnded", m.refund, env.owner, pid)  # last round still open
    env.advance(301)
    m.expire_round(env.outsider, pid, 2)  # nobody revealed: whole budget refundable
    m.refund(env.owner, pid)
    exc = expect_revert("NothingToRefund", m.refund, env.owner, pid)
    assert exc.args == (pid,)
    env.assert_escrow_balanced()


def test_nothing_to_refund_when_every_wei_was_allocated(market_env, revealed_round):
    env, m = market_env, market_env.market
    pid, rnd, _ = revealed_round(n=1, rounds=1)
    env.advance(101)
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, digest("root"), REWARD)
    expect_revert("NothingToRefund", m.refund, env.owner, pid)
