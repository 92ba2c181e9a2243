"""Admission lists from MeritRank gate ``commitUpdate`` on a real anvil chain."""

from __future__ import annotations

import hashlib

import pytest

from market.chain import ContractRevert, compute_commitment
from market.reputation import (
    EMPTY_ROOT,
    AdmissionPolicy,
    FeedbackGraph,
    MeritRank,
    RewardEvent,
    admission_for,
)


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def commit(env, pid: int, rnd: int, trainer, proof: list[bytes]):
    commitment = compute_commitment(h(f"update:{trainer.address}"), trainer.address, h("salt"))
    return env.market.commit_update(trainer, pid, rnd, commitment, proof)


def expect_not_admitted(fn, *args) -> None:
    with pytest.raises(ContractRevert) as info:
        fn(*args)
    assert info.value.error_name == "NotAdmitted", str(info.value)


@pytest.mark.slow
def test_sybil_crowd_is_refused_at_admission_and_by_the_contract(market_env):
    env = market_env
    owner = env.owner.address
    regulars = [t.address for t in env.trainers[:3]]
    attacker = env.trainers[3].address
    sybils = [t.address for t in env.trainers[4:6]] + [env.outsider.address]
    newcomer = env.trainers[6]
    events = [RewardEvent(owner, t, 10.0, r) for r in range(3) for t in regulars]
    events += [RewardEvent(regulars[0], t, 30.0, 2) for t in regulars[1:]]  # its own project
    events.append(RewardEvent(regulars[0], attacker, 1.0, 2))  # one weak attack edge
    events += [RewardEvent(attacker, s, 50.0, 2) for s in sybils]
    events += [RewardEvent(a, b, 50.0, 2) for a in sybils for b in sybils if a != b]
    rank = MeritRank(FeedbackGraph.from_events(events), alpha=0.2, beta=0.5, walks_per_seed=4000)
    policy = AdmissionPolicy(top_k=5, min_reputation=0.02, newcomer_quota=1)
    applicants = [*regulars, attacker, *sybils, newcomer.address]
    out = admission_for(rank, owner, applicants, policy, public_seed=h("round-1"))
    assert out.established == sorted(regulars, key=lambda a: int(a, 16))
    assert out.newcomers == [newcomer.address]
    assert set(out.refused) == {attacker, *sybils}

    pid = env.create_project()
    rnd, _ = env.market.open_round(env.aggregator, pid, h("model0"), out.root)
    assert env.market.get_round(pid, rnd).admission_root == out.root
    for t in [*env.trainers[:3], newcomer]:
        commit(env, pid, rnd, t, out.proof_for(t.address))
    stolen = out.proof_for(regulars[0])
    for t in [*env.trainers[3:6], env.outsider]:
        expect_not_admitted(commit, env, pid, rnd, t, stolen)
        expect_not_admitted(commit, env, pid, rnd, t, [])


@pytest.mark.slow
def test_nobody_admitted_root_refuses_everyone(market_env):
    env = market_env
    pid = env.create_project()
    rnd, _ = env.market.open_round(env.aggregator, pid, h("model0"), EMPTY_ROOT)
    for t in env.trainers[:2]:
        expect_not_admitted(commit, env, pid, rnd, t, [])
