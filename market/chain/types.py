"""Plain data the market wrapper returns: projects, rounds, submissions, transactions.

Kept apart from the wrapper so that code reading the chain's state (services, the API, the
database) can import the types without web3 machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from market.errors import ConfigError

ZERO32 = b"\0" * 32


class RoundState(IntEnum):
    NONE = 0
    OPEN = 1
    FINALIZED = 2
    EXPIRED = 3


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    gas_used: int
    block_number: int
    events: list[dict]


@dataclass(frozen=True)
class Project:
    project_id: int
    owner: str
    aggregator: str
    spec_digest: bytes
    rounds: int
    rounds_opened: int
    cancelled: bool
    submission_window: int
    reveal_window: int
    finalize_window: int
    reward_per_round: int
    refundable: int


@dataclass(frozen=True)
class Round:
    project_id: int
    round: int
    state: RoundState
    commit_deadline: int
    reveal_deadline: int
    finalize_deadline: int
    commits: int
    reveals: int
    global_model: bytes
    admission_root: bytes
    new_model: bytes
    report_digest: bytes
    rewards_root: bytes
    budget: int
    total: int
    claimed: int

    @property
    def unpaid(self) -> int:
        """Wei this round still holds in escrow."""
        if self.state == RoundState.OPEN:
            return self.budget
        if self.state in (RoundState.FINALIZED, RoundState.EXPIRED):
            return self.total - self.claimed
        return 0


@dataclass(frozen=True)
class Submission:
    """A trainer's submission as the contract stores it: ``commitment`` is the first 28 bytes
    of the full commitment (all zero if none); the revealed digest is in the
    ``UpdateRevealed`` event (see :meth:`LearningMarket.revealed_digest`)."""

    commitment: bytes
    revealed: bool
    claimed: bool

    @property
    def committed(self) -> bool:
        return any(self.commitment)


def compute_commitment(update_digest: bytes, trainer: str, salt: bytes) -> bytes:
    """keccak256(abi.encode(updateDigest, trainer, salt)), as the contract computes it."""
    return keccak(
        abi_encode(
            ["bytes32", "address", "bytes32"],
            [
                _b32(update_digest, "update_digest"),
                to_checksum_address(trainer),
                _b32(salt, "salt"),
            ],
        )
    )


def _b32(value: bytes, name: str) -> bytes:
    value = bytes(value)
    if len(value) != 32:
        raise ConfigError(f"{name} must be 32 bytes, got {len(value)}")
    return value
