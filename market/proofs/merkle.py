"""Merkle trees compatible with OpenZeppelin's StandardMerkleTree and ``MerkleProof``.

The contract checks reward claims and round admission with OpenZeppelin's ``MerkleProof``
(sorted-pair keccak256), so the trees built off chain must hash exactly like
``@openzeppelin/merkle-tree``'s ``StandardMerkleTree``:

- leaf = keccak256(keccak256(abi.encode(value...))) — double hashing, so a leaf can never
  be mistaken for an inner node (second-preimage safety);
- inner node = keccak256(min(a, b) ‖ max(a, b)) — sorted pairs, so a proof needs no
  left/right flags;
- leaf order is deterministic: leaf hashes are sorted ascending (as OZ's ``sortLeaves``
  default does), laid out in a flat array of 2n−1 nodes with the leaves at the end in
  reverse, root at index 0. The same set of values gives the same root whatever the input
  order; ``proof(i)`` still refers to the i-th value as given.

Reward leaves are (address, uint256) and admission leaves (address,), as in the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import is_address, keccak, to_checksum_address

from market.errors import ProofError


def leaf_hash(types: Sequence[str], value: Sequence[Any]) -> bytes:
    """keccak256(keccak256(abi.encode(value))) — OZ StandardMerkleTree's leaf."""
    return keccak(keccak(abi_encode(list(types), list(value))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OZ ``Hashes.commutativeKeccak256``: hash the pair in sorted order."""
    return keccak(a + b) if a < b else keccak(b + a)


def reward_leaf(account: str, amount: int) -> bytes:
    """The contract's claim leaf for ``account`` being owed ``amount`` wei."""
    return leaf_hash(["address", "uint256"], [_address(account), int(amount)])


def address_leaf(account: str) -> bytes:
    """The contract's admission leaf for ``account``."""
    return leaf_hash(["address"], [_address(account)])


def _address(value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ProofError(f"not an Ethereum address: {value!r}")
    return to_checksum_address(value)


class MerkleTree:
    """A StandardMerkleTree over typed values. Build with :meth:`of_rewards`,
    :meth:`of_addresses` or :meth:`of`."""

    def __init__(self, types: Sequence[str], values: Sequence[tuple], key=None) -> None:
        if not values:
            raise ProofError("cannot build a Merkle tree of no values: give at least one leaf")
        self.types = tuple(types)
        self.values = [tuple(v) for v in values]
        hashes = [leaf_hash(self.types, v) for v in self.values]
        if len(set(hashes)) != len(hashes):
            raise ProofError("duplicate values in a Merkle tree: each leaf must be unique")
        order = sorted(range(len(hashes)), key=lambda i: hashes[i])
        n = len(hashes)
        self._tree: list[bytes] = [b""] * (2 * n - 1)
        self._tree_index = [0] * n  # value index -> position in the flat tree
        for leaf_pos, value_index in enumerate(order):
            pos = len(self._tree) - 1 - leaf_pos
            self._tree[pos] = hashes[value_index]
            self._tree_index[value_index] = pos
        for i in range(len(self._tree) - 1 - n, -1, -1):
            self._tree[i] = hash_pair(self._tree[2 * i + 1], self._tree[2 * i + 2])
        self._key = key or (lambda v: v)
        self._index_of = {self._key(v): i for i, v in enumerate(self.values)}

    # -------------------------------------------------------- constructors

    @classmethod
    def of(cls, types: Sequence[str], values: Sequence[Sequence[Any]]) -> MerkleTree:
        """Any ABI types, like ``StandardMerkleTree.of(values, types)``."""
        return cls(types, [tuple(v) for v in values])

    @classmethod
    def of_rewards(cls, entries: Sequence[tuple[str, int]]) -> MerkleTree:
        """Reward table: one (account, amount in wei) per account."""
        values = []
        for account, amount in entries:
            if int(amount) < 0 or int(amount) >= 2**256:
                raise ProofError(f"reward for {account} out of uint256 range: {amount}")
            values.append((_address(account), int(amount)))
        accounts = [a for a, _ in values]
        if len(set(accounts)) != len(accounts):
            raise ProofError("an account appears twice in the reward table: merge its rewards")
        return cls(["address", "uint256"], values, key=lambda v: v[0])

    @classmethod
    def of_addresses(cls, addresses: Sequence[str]) -> MerkleTree:
        """Admission list: one leaf per admitted address."""
        values = [(_address(a),) for a in addresses]
        if len(set(values)) != len(values):
            raise ProofError("an address appears twice in the admission list")
        return cls(["address"], values, key=lambda v: v[0])

    # --------------------------------------------------------------- reads

    @property
    def root(self) -> bytes:
        return self._tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def leaf(self, index: int) -> bytes:
        """Leaf hash of the ``index``-th value as given."""
        return self._tree[self._tree_index[self._check(index)]]

    def proof(self, index: int) -> list[bytes]:
        """Proof for the ``index``-th value as given (input order, not tree order)."""
        pos = self._tree_index[self._check(index)]
        proof = []
        while pos > 0:
            sibling = pos + 1 if pos % 2 == 1 else pos - 1
            proof.append(self._tree[sibling])
            pos = (pos - 1) // 2
        return proof

    def index_of(self, value: Any) -> int:
        """Index of ``value``: an address for reward and admission trees (an (address, amount)
        pair is accepted too), else the full value tuple."""
        key = self._normalise(value)
        try:
            return self._index_of[key]
        except KeyError:
            raise ProofError(f"{value!r} is not in this Merkle tree") from None

    def proof_for(self, value: Any) -> list[bytes]:
        """Proof for ``value`` (see :meth:`index_of`)."""
        return self.proof(self.index_of(value))

    def amount_of(self, account: str) -> int:
        """A reward tree's amount for ``account``."""
        return int(self.values[self.index_of(account)][1])

    @staticmethod
    def verify(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
        """OZ ``MerkleProof.verify``: fold the proof over the leaf and compare with root."""
        node = bytes(leaf)
        for sibling in proof:
            node = hash_pair(node, bytes(sibling))
        return node == bytes(root)

    def _check(self, index: int) -> int:
        if not 0 <= index < len(self.values):
            raise ProofError(f"leaf index {index} out of range 0..{len(self.values) - 1}")
        return index

    def _normalise(self, value: Any) -> Any:
        if self.types == ("address", "uint256"):
            account = value[0] if isinstance(value, tuple | list) else value
            return _address(account)
        if self.types == ("address",):
            account = value[0] if isinstance(value, tuple | list) else value
            return _address(account)
        return tuple(value)

    def dump(self) -> dict:
        """A JSON-able description: root, leaves and proofs by input index."""
        return {
            "types": list(self.types),
            "root": "0x" + self.root.hex(),
            "values": [
                {
                    "value": [str(x) for x in v],
                    "leaf": "0x" + self.leaf(i).hex(),
                    "proof": ["0x" + p.hex() for p in self.proof(i)],
                }
                for i, v in enumerate(self.values)
            ],
        }
