"""Proofs: Merkle trees (rewards, admission), chain-seeded sketches of updates
(:mod:`.sketch`), re-execution of finalized rounds (:mod:`.verify`, ``market verify``) and
the Groth16 proof of the reward split checked on chain (:mod:`.zk`, :mod:`.verifier_gen`)."""

from market.proofs.merkle import MerkleTree, address_leaf, hash_pair, leaf_hash, reward_leaf

__all__ = ["MerkleTree", "address_leaf", "hash_pair", "leaf_hash", "reward_leaf"]
