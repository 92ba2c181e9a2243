import pytest

from market.errors import ReputationError
from market.proofs.merkle import MerkleTree, address_leaf
from market.reputation import (
    EMPTY_ROOT,
    Admission,
    AdmissionPolicy,
    FeedbackGraph,
    MeritRank,
    admission_for,
    admit,
    lottery_key,
    policy_from_spec,
)


def addr(i: int) -> str:
    return "0x" + f"{i:040x}"


SEED = b"\x01" * 32


def test_top_k_by_reputation_and_minimum():
    reps = {addr(1): 0.5, addr(2): 0.3, addr(3): 0.2, addr(4): 0.01}
    out = admit(list(reps), reps, AdmissionPolicy(top_k=2, min_reputation=0.05), SEED)
    assert out.established == [addr(1), addr(2)] == out.admitted
    assert "top 2" in out.refused[addr(3)]
    assert "below the minimum" in out.refused[addr(4)]
    assert out.newcomers == []


def test_newcomer_quota_bounds_unknown_applicants_whatever_their_number():
    reps = {addr(1): 0.4}
    crowd = [addr(1000 + i) for i in range(500)]
    out = admit([addr(1), *crowd], reps, AdmissionPolicy(top_k=5, newcomer_quota=3), SEED)
    assert len(out.newcomers) == 3
    assert set(out.admitted) == {addr(1), *out.newcomers}
    assert sum("quota" in r for r in out.refused.values()) == 497


def test_lottery_and_ties_are_deterministic_and_follow_the_public_seed():
    reps = {addr(i): 0.1 for i in range(1, 11)}  # ten-way tie
    newcomers = [addr(100 + i) for i in range(10)]
    policy = AdmissionPolicy(top_k=3, newcomer_quota=2)
    apps = list(reps) + newcomers
    a = admit(apps, reps, policy, SEED)
    b = admit(
        list(reversed(apps)),
        {k.upper().replace("0X", "0x"): v for k, v in reps.items()},
        policy,
        SEED,
    )
    assert a.admitted == b.admitted and a.root == b.root
    expected = sorted(reps, key=lambda x: lottery_key(SEED, x))[:3]
    assert a.established == sorted(expected, key=lambda x: int(x, 16))
    other = admit(apps, reps, policy, b"\x02" * 32)
    assert other.admitted != a.admitted  # a different public seed draws differently


def test_root_and_proofs_match_the_openzeppelin_tree():
    reps = {addr(i): 1.0 / i for i in range(1, 6)}
    out = admit(reps, reps, AdmissionPolicy(top_k=4), SEED)
    assert out.admitted == sorted(out.admitted, key=lambda x: int(x, 16))
    assert out.root == MerkleTree.of_addresses(out.admitted).root
    for a in out.admitted:
        assert MerkleTree.verify(out.root, address_leaf(a), out.proof_for(a))
    with pytest.raises(ReputationError):
        out.proof_for(addr(5))
    doc = out.to_json()
    assert doc["root"] == "0x" + out.root.hex() and set(doc["proofs"]) == set(out.admitted)


def test_nobody_admitted_gives_the_empty_root():
    out = admit([addr(1)], {addr(1): 0.01}, AdmissionPolicy(top_k=3, min_reputation=0.1), SEED)
    assert out.admitted == [] and out.root == EMPTY_ROOT and out.proofs == {}
    assert EMPTY_ROOT != b"\x00" * 32  # the contract reads a zero root as "open admission"


def test_tree_is_a_parameter():
    seen = []

    class Fake:
        root = b"\x07" * 32

        def proof_for(self, a):
            return [b"\x08" * 32]

    def factory(addresses):
        seen.append(addresses)
        return Fake()

    out = admit(
        [addr(2), addr(1)],
        {addr(1): 1.0, addr(2): 2.0},
        AdmissionPolicy(top_k=2),
        SEED,
        tree_factory=factory,
    )
    assert seen == [[addr(1), addr(2)]] and out.root == b"\x07" * 32


def test_invalid_inputs_raise():
    with pytest.raises(ReputationError):
        admit(["not-an-address"], {}, AdmissionPolicy(top_k=1), SEED)
    with pytest.raises(ReputationError):
        AdmissionPolicy(top_k=-1)


def test_known_low_reputation_is_refused_while_unknown_enters_the_lottery():
    # addr(2) is reachable from the seeds but the estimate gave it nothing: refused, not a
    # newcomer; addr(3) is unknown: a newcomer.
    reps = {addr(1): 0.2}
    out = admit(
        [addr(1), addr(2), addr(3)],
        reps,
        AdmissionPolicy(top_k=5, min_reputation=0.01, newcomer_quota=1),
        SEED,
        known={addr(1), addr(2)},
    )
    assert out.established == [addr(1)] and out.newcomers == [addr(3)]
    assert "below the minimum" in out.refused[addr(2)]


def test_policy_and_admission_round_trip_through_json():
    policy = AdmissionPolicy(top_k=4, min_reputation=0.01, newcomer_quota=2)
    assert AdmissionPolicy.from_dict(policy.to_dict()) == policy
    assert policy_from_spec(policy.to_dict()) == policy
    assert policy_from_spec({"policy": "open"}) is None
    for bad in ({"top": 3}, {"policy": "other", "top_k": 3}):
        with pytest.raises(ReputationError):
            AdmissionPolicy.from_dict(bad)
    reps = {addr(i): 1.0 / i for i in range(1, 6)}
    out = admit([*reps, addr(77)], reps, policy, SEED)
    assert Admission.from_json(out.to_json()) == out
    with pytest.raises(ReputationError):
        Admission.from_json({"admitted": []})


def test_admission_for_uses_meritrank_and_graph_reachability():
    owner, far, sybil, fresh = addr(1), addr(2), addr(3), addr(4)
    g = FeedbackGraph()
    g.add_edge(owner, far, 5.0)
    g.add_edge(far, addr(5), 1000.0)
    g.add_edge(far, sybil, 0.001)  # reachable, tiny reputation (maybe no walk at all)
    mr = MeritRank(g, alpha=0.2, beta=0.5, seed=0, walks_per_seed=500)
    policy = AdmissionPolicy(top_k=5, min_reputation=0.05, newcomer_quota=1)
    out = admission_for(mr, owner, [far, sybil, fresh], policy, SEED)
    assert out.established == [far] and out.newcomers == [fresh]
    assert "below the minimum" in out.refused[sybil]
