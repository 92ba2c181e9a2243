"""claimMany (several rounds in one transaction) and the gas goals of issue 6, on anvil.

Gas is deterministic for given calldata and state, so the goals are plain assertions
(whole-transaction gasUsed, the 21k base included).
"""

from __future__ import annotations

from chain_helpers import digest, expect_revert, make_update

from market.chain import TxResult, send_transaction
from market.proofs import MerkleTree

REWARD = 10**18
ZERO = b"\0" * 32


def _finalized_rounds(env, n_rounds: int, trainers, amounts) -> tuple[int, list[MerkleTree]]:
    """A project whose first ``n_rounds`` rounds are finalized, every trainer revealed in
    each and paid ``amounts[i]`` (trainer i) in every round; returns (project, trees)."""
    m = env.market
    pid = env.create_project(rounds=n_rounds, reward_per_round=REWARD)
    trees = []
    for k in range(n_rounds):
        rnd, _ = m.open_round(env.aggregator, pid, digest(f"model{k}"))
        updates = [make_update(t, f"round{rnd}") for t in trainers]
        for u in updates:
            m.commit_update(u.trainer, pid, rnd, u.commitment)
        env.advance(101)
        for u in updates:
            m.reveal_update(u.trainer, pid, rnd, u.update_digest, u.salt)
        env.advance(101)
        tree = MerkleTree.of_rewards(
            [(t.address, a) for t, a in zip(trainers, amounts, strict=True)]
        )
        m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, sum(amounts))
        trees.append(tree)
    return pid, trees


def _received(env, account, send) -> tuple[int, TxResult]:
    """Run ``send()``; what ``account`` gained by it (its fee added back), and the result."""
    before = env.w3.eth.get_balance(account.address)
    result = send()
    receipt = env.w3.eth.get_transaction_receipt(result.tx_hash)
    fee = result.gas_used * receipt["effectiveGasPrice"]
    return env.w3.eth.get_balance(account.address) - before + fee, result


def test_claim_many_pays_what_single_claims_pay_and_no_round_twice(market_env):
    env, m = market_env, market_env.market
    a, b = env.trainers[0], env.trainers[1]
    amounts = [REWARD // 3, REWARD // 5]
    pid, trees = _finalized_rounds(env, 4, [a, b], amounts)

    # b claims rounds 1..3 one by one, a claims them in one claimMany
    proofs_b = {r: trees[r - 1].proof_for(b.address) for r in (1, 2, 3)}
    single = [
        _received(env, b, lambda r=r: m.claim(b, pid, r, amounts[1], proofs_b[r]))[0]
        for r in (1, 2, 3)
    ]
    claims = [(r, amounts[0], trees[r - 1].proof_for(a.address)) for r in (1, 2, 3)]
    received, many = _received(env, a, lambda: m.claim_many(a, pid, claims))
    assert single == [amounts[1]] * 3
    assert received == 3 * amounts[0]
    assert [(e["event"], e["args"]["round"], e["args"]["amount"]) for e in many.events] == [
        ("RewardClaimed", r, amounts[0]) for r in (1, 2, 3)
    ]
    assert all(m.is_claimed(pid, r, t.address) for r in (1, 2, 3) for t in (a, b))
    env.assert_escrow_balanced()

    # neither path pays a round the other already paid; a round listed twice is refused
    exc = expect_revert(
        "AlreadyClaimed", m.claim, a, pid, 2, amounts[0], trees[1].proof_for(a.address)
    )
    assert exc.args == (a.address,)
    proof_b = [(r, amounts[1], trees[r - 1].proof_for(b.address)) for r in (4, 2)]
    expect_revert("AlreadyClaimed", m.claim_many, b, pid, proof_b)
    assert not m.is_claimed(pid, 4, b.address)  # all or nothing: round 4 rolled back
    twice = [(4, amounts[0], trees[3].proof_for(a.address))] * 2
    expect_revert("AlreadyClaimed", m.claim_many, a, pid, twice)
    assert _received(env, a, lambda: m.claim_many(a, pid, twice[:1]))[0] == amounts[0]
    env.assert_escrow_balanced()


def test_claim_many_checks_every_round(market_env):
    env, m = market_env, market_env.market
    a, b = env.trainers[0], env.trainers[1]
    amounts = [REWARD // 2, REWARD // 4]
    pid, trees = _finalized_rounds(env, 2, [a, b], amounts)
    good = (1, amounts[0], trees[0].proof_for(a.address))
    bad_proofs = [good, (2, amounts[0] + 1, trees[1].proof_for(a.address))]
    expect_revert("InvalidProof", m.claim_many, a, pid, bad_proofs)
    exc = expect_revert("RoundNotFinalized", m.claim_many, a, pid, [good, (3, 1, [])])
    assert exc.args == (pid, 3)
    exc = expect_revert("NotRevealed", m.claim_many, env.outsider, pid, [good])
    assert exc.args == (env.outsider.address,)
    assert not m.is_claimed(pid, 1, a.address)
    env.assert_escrow_balanced()


def test_claim_many_argument_errors(market_env):
    env, m = market_env, market_env.market
    a = env.trainers[0]
    pid, trees = _finalized_rounds(env, 1, [a], [REWARD])
    proof = trees[0].proof_for(a.address)
    expect_revert("NoRounds", m.claim_many, a, pid, [])
    call = m.contract.functions.claimMany
    cases = [
        (([1], [REWARD, 1], [proof]), (1, 2, 1)),
        (([1], [REWARD], [proof, proof]), (1, 1, 2)),
        (([1, 1], [REWARD], []), (2, 1, 0)),
    ]
    for (rounds, amounts, proofs), lengths in cases:
        data = call(pid, rounds, amounts, proofs)._encode_transaction_data()
        exc = expect_revert("LengthMismatch", _send_raw, env, a, data)
        assert exc.args == lengths
    m.claim_many(a, pid, [(1, REWARD, proof)])
    env.assert_escrow_balanced()


def _send_raw(env, account, data: str):
    """claimMany with hand-made (mismatched) arrays: the wrapper cannot produce them."""
    m = env.market
    tx = {"to": m.address, "data": data}
    return send_transaction(env.w3, account, tx, on_revert=m._revert("claimMany"))


def test_gas_goals_of_issue_6(market_env):
    """commitUpdate ≤ 60k, revealUpdate ≤ 50k, claim ≤ 60k averaged over a round's claims
    (7 trainers), and claimMany cheaper per round than single claims."""
    env, m = market_env, market_env.market
    trainers = env.trainers
    amounts = [REWARD // 8 + i for i in range(len(trainers))]
    pid = env.create_project(rounds=3, reward_per_round=REWARD)
    rnd, _ = m.open_round(env.aggregator, pid, digest("g"))
    updates = [make_update(t) for t in trainers]
    commits = [m.commit_update(u.trainer, pid, rnd, u.commitment).gas_used for u in updates]
    env.advance(101)
    reveals = [
        m.reveal_update(u.trainer, pid, rnd, u.update_digest, u.salt).gas_used for u in updates
    ]
    env.advance(101)
    tree = MerkleTree.of_rewards([(t.address, a) for t, a in zip(trainers, amounts, strict=True)])
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, tree.root, sum(amounts))
    claims = [
        m.claim(t, pid, rnd, a, tree.proof_for(t.address)).gas_used
        for t, a in zip(trainers, amounts, strict=True)
    ]
    assert max(commits) <= 60_000, commits
    assert max(reveals) <= 50_000, reveals
    assert sum(claims) / len(claims) <= 60_000, claims

    a = trainers[0]
    pid2, trees = _finalized_rounds(env, 3, [a, trainers[1]], [REWARD // 2, REWARD // 4])
    many = m.claim_many(
        a, pid2, [(r, REWARD // 2, trees[r - 1].proof_for(a.address)) for r in (1, 2, 3)]
    )
    assert many.gas_used / 3 < min(claims), (many.gas_used, claims)
