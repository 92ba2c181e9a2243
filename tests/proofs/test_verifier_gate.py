"""The contract's proof gate: a project opts into proofs before its first round."""

from __future__ import annotations

import pytest

from market.chain import ContractRevert

ZERO = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20


def expect(error: str, fn, *args):
    with pytest.raises(ContractRevert) as info:
        fn(*args)
    assert info.value.error_name == error, str(info.value)


def test_a_project_with_a_verifier_cannot_finalize_without_a_proof(market_env):
    env, m = market_env, market_env.market
    pid = env.create_project(rounds=2)
    assert m.proof_verifier(pid) == ZERO_ADDRESS
    expect("NotOwner", m.set_proof_verifier, env.aggregator, pid, env.outsider.address)
    m.set_proof_verifier(env.owner, pid, env.outsider.address)
    assert m.proof_verifier(pid) == env.outsider.address
    rnd, _ = m.open_round(env.aggregator, pid, ZERO, ZERO)
    expect("VerifierLocked", m.set_proof_verifier, env.owner, pid, ZERO_ADDRESS)
    env.advance(301)
    expect("ProofRequired", m.finalize_round, env.aggregator, pid, rnd, ZERO, ZERO, ZERO, 0)


def test_a_project_without_a_verifier_refuses_proofs_and_finalizes_as_before(market_env):
    env, m = market_env, market_env.market
    pid = env.create_project(rounds=1)
    rnd, _ = m.open_round(env.aggregator, pid, ZERO, ZERO)
    env.advance(201)
    expect(
        "NoProofVerifier",
        m.finalize_round_with_proof,
        env.aggregator,
        pid,
        rnd,
        ZERO,
        ZERO,
        ZERO,
        0,
        (1, 2),
        [0] * 8,
    )
    m.finalize_round(env.aggregator, pid, rnd, ZERO, ZERO, ZERO, 0)
