"""OpenZeppelin-compatible Merkle trees: known vectors, proofs, and checks by the contract."""

from __future__ import annotations

import random

import pytest
from eth_abi import encode
from eth_utils import keccak

from market.errors import ProofError
from market.proofs import MerkleTree, address_leaf, hash_pair, reward_leaf

# @openzeppelin/merkle-tree README example: StandardMerkleTree.of(values, ["address","uint256"])
OZ_VALUES = [
    ("0x1111111111111111111111111111111111111111", 5000000000000000000),
    ("0x2222222222222222222222222222222222222222", 2500000000000000000),
]
OZ_ROOT = "d4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77"
OZ_LEAF_0 = "eb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283"
OZ_PROOF_0 = ["b92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc"]


def _accounts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["0x" + rng.randbytes(20).hex() for _ in range(n)]


def test_matches_openzeppelin_standard_merkle_tree_vector():
    tree = MerkleTree.of_rewards(OZ_VALUES)
    assert tree.root.hex() == OZ_ROOT
    assert tree.leaf(0).hex() == OZ_LEAF_0
    assert [p.hex() for p in tree.proof(0)] == OZ_PROOF_0
    assert tree.proof(1) == [bytes.fromhex(OZ_LEAF_0)]


def test_leaf_is_double_hashed_abi_encoding():
    account, amount = OZ_VALUES[0]
    expected = keccak(keccak(encode(["address", "uint256"], [account, amount])))
    assert reward_leaf(account, amount) == expected
    assert address_leaf(account) == keccak(keccak(encode(["address"], [account])))


def test_hash_pair_is_commutative():
    a, b = keccak(b"a"), keccak(b"b")
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 33])
def test_every_proof_verifies(n):
    entries = list(zip(_accounts(n, n), range(1, n + 1), strict=True))
    tree = MerkleTree.of_rewards(entries)
    for i, (account, amount) in enumerate(entries):
        proof = tree.proof(i)
        assert MerkleTree.verify(tree.root, reward_leaf(account, amount), proof)
        assert tree.proof_for(account) == proof
        assert tree.proof_for((account, amount)) == proof
        assert tree.amount_of(account) == amount
        assert not MerkleTree.verify(tree.root, reward_leaf(account, amount + 1), proof)
    assert len(tree) == n


def test_root_does_not_depend_on_input_order():
    entries = list(zip(_accounts(11), range(11), strict=True))
    shuffled = entries[:]
    random.Random(1).shuffle(shuffled)
    assert MerkleTree.of_rewards(entries).root == MerkleTree.of_rewards(shuffled).root


def test_single_leaf_tree_has_root_equal_to_leaf_and_empty_proof():
    tree = MerkleTree.of_addresses([OZ_VALUES[0][0]])
    assert tree.root == address_leaf(OZ_VALUES[0][0])
    assert tree.proof(0) == []
    assert MerkleTree.verify(tree.root, tree.leaf(0), [])


def test_addresses_are_case_insensitive():
    lower = "0x" + "ab" * 20
    tree = MerkleTree.of_addresses([lower, "0x" + "cd" * 20])
    assert tree.proof_for(lower.upper().replace("0X", "0x")) == tree.proof(0)


def test_invalid_inputs_raise_proof_error():
    with pytest.raises(ProofError, match="no values"):
        MerkleTree.of_rewards([])
    with pytest.raises(ProofError, match="no values"):
        MerkleTree.of_addresses([])
    account = OZ_VALUES[0][0]
    with pytest.raises(ProofError, match="twice"):
        MerkleTree.of_rewards([(account, 1), (account, 2)])
    with pytest.raises(ProofError, match="twice"):
        MerkleTree.of_addresses([account, account.upper().replace("0X", "0x")])
    with pytest.raises(ProofError, match="address"):
        MerkleTree.of_addresses(["0x1234"])
    with pytest.raises(ProofError, match="range"):
        MerkleTree.of_rewards([(account, -1)])
    tree = MerkleTree.of_rewards(OZ_VALUES)
    with pytest.raises(ProofError, match="out of range"):
        tree.proof(2)
    with pytest.raises(ProofError, match="not in this Merkle tree"):
        tree.proof_for("0x" + "33" * 20)


def test_generic_tree_and_dump():
    tree = MerkleTree.of(["uint256"], [[9878], [9785], [9592]])
    assert tree.proof_for((9785,)) == tree.proof(1)
    dump = tree.dump()
    assert dump["root"] == "0x" + tree.root.hex() and len(dump["values"]) == 3


def test_contract_accepts_python_proofs_for_admission_and_claims(market_env):
    """The on-chain OpenZeppelin MerkleProof accepts every proof this module makes."""
    from market.chain import compute_commitment

    env, m = market_env, market_env.market
    trainers = env.trainers[:5]
    admission = MerkleTree.of_addresses([t.address for t in trainers] + _accounts(6))
    pid = env.create_project(rounds=1, reward_per_round=10**18)
    rnd, _ = m.open_round(env.aggregator, pid, b"\1" * 32, admission.root)
    digest, salt = b"\4" * 32, b"\5" * 32
    for t in trainers:
        commitment = compute_commitment(digest, t.address, salt)
        m.commit_update(t, pid, rnd, commitment, admission.proof_for(t.address))
    env.advance(101)
    for t in trainers:
        m.reveal_update(t, pid, rnd, digest, salt)
    amounts = [10**16 * (i + 1) for i in range(len(trainers))]
    rewards = MerkleTree.of_rewards(
        [(t.address, a) for t, a in zip(trainers, amounts, strict=True)] + [(_accounts(1)[0], 1)]
    )
    env.advance(101)
    m.finalize_round(
        env.aggregator, pid, rnd, b"\2" * 32, b"\3" * 32, rewards.root, sum(amounts) + 1
    )
    for t, a in zip(trainers, amounts, strict=True):
        m.claim(t, pid, rnd, a, rewards.proof_for(t.address))
    assert m.get_round(pid, rnd).claimed == sum(amounts)


def test_property_every_proof_verifies_and_order_does_not_matter():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    entries_strategy = st.dictionaries(
        st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
        st.integers(min_value=0, max_value=2**256 - 1),
        min_size=1,
        max_size=40,
    )

    @settings(max_examples=60, deadline=None)
    @given(entries_strategy, st.randoms(use_true_random=False))
    def check(entries, rnd):
        items = list(entries.items())
        tree = MerkleTree.of_rewards(items)
        for i, (account, amount) in enumerate(items):
            assert MerkleTree.verify(tree.root, reward_leaf(account, amount), tree.proof(i))
        rnd.shuffle(items)
        assert MerkleTree.of_rewards(items).root == tree.root

    check()
