"""Plain helpers for the chain tests (imported by name; fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from market.chain import compute_commitment


def digest(label: str) -> bytes:
    """A 32-byte digest standing in for a CID's sha2-256 digest."""
    return hashlib.sha256(label.encode()).digest()


@dataclass(frozen=True)
class Update:
    trainer: LocalAccount
    update_digest: bytes
    salt: bytes

    @property
    def commitment(self) -> bytes:
        return compute_commitment(self.update_digest, self.trainer.address, self.salt)


def make_update(trainer: LocalAccount, label: str = "") -> Update:
    tag = f"{trainer.address}:{label}"
    return Update(trainer, digest("update:" + tag), digest("salt:" + tag))
