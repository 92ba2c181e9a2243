"""Tables of the reputation service: its input log, its cursor, applications, admissions.

The reputation book is a pure function of its input log (``ReputationBook.log``), so the
log is what is stored — with the block each entry came from and that block's hash, so a
reorganised chain is rolled back to the fork point instead of re-read from scratch.
Signed applications are kept as received (anyone can re-check them against the
published admission), and each published admission document's CID is indexed by round:
a CID cannot be derived from the Merkle root the chain holds.

Tables (added on the shared ``Base``; migrations for them belong in
``market/db/migrations``): ``reputation_cursors``, ``reputation_log``,
``reputation_applications``, ``reputation_admissions``. Until a migration creates them,
:func:`ensure_tables` does (idempotently).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from market.db.models import Base


class ReputationCursor(Base):
    """How far the reputation indexer has read a market's events, and the hash of the last
    block read (a different hash there later means a reorg or a restarted node)."""

    __tablename__ = "reputation_cursors"
    __table_args__ = (UniqueConstraint("contract", "chain_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    next_block: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)


class ReputationLogEntry(Base):
    """One input of the reputation book (JSON), in order, with the block it came from."""

    __tablename__ = "reputation_log"
    __table_args__ = (UniqueConstraint("contract", "chain_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    entry_json: Mapped[str] = mapped_column(Text)


class SignedApplication(Base):
    """A trainer's EIP-712 signed application to a round (verified before it is stored)."""

    __tablename__ = "reputation_applications"
    __table_args__ = (UniqueConstraint("contract", "chain_id", "project_id", "round", "trainer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int] = mapped_column(BigInteger)
    round: Mapped[int] = mapped_column(Integer)
    trainer: Mapped[str] = mapped_column(String(42))
    signature: Mapped[str] = mapped_column(String(140))
    # trainer side: the aggregator API that accepted it (None: stored where it was received)
    delivered_to: Mapped[str | None] = mapped_column(String(200), nullable=True)


class PublishedAdmission(Base):
    """Where a round's admission document is: its CID, next to the root sent on chain."""

    __tablename__ = "reputation_admissions"
    __table_args__ = (UniqueConstraint("contract", "chain_id", "project_id", "round"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int] = mapped_column(BigInteger)
    round: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(66))
    cid: Mapped[str] = mapped_column(String(100))
    admitted: Mapped[int] = mapped_column(Integer)


TABLES = [
    ReputationCursor.__table__,
    ReputationLogEntry.__table__,
    SignedApplication.__table__,
    PublishedAdmission.__table__,
]


def ensure_tables(engine: Engine) -> None:
    """Create the reputation tables that do not exist yet (no-op once migrated)."""
    Base.metadata.create_all(engine, tables=TABLES, checkfirst=True)
