"""Proofs: Merkle trees (rewards, admission); round transcripts and ZK proofs later."""

from market.proofs.merkle import MerkleTree, address_leaf, hash_pair, leaf_hash, reward_leaf

__all__ = ["MerkleTree", "address_leaf", "hash_pair", "leaf_hash", "reward_leaf"]
