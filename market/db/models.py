"""What trainers and the aggregator must remember between commands and across crashes.

Intent is recorded before each transaction (the trainer's salt before ``commitUpdate``),
so a restarted process reconciles with the chain instead of guessing.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Submission(Base):
    """A trainer's update for one round: private until the commit window closes."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("contract", "project_id", "round", "trainer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    project_id: Mapped[int] = mapped_column(BigInteger)
    round: Mapped[int] = mapped_column(Integer)
    trainer: Mapped[str] = mapped_column(String(42))
    update: Mapped[bytes] = mapped_column(LargeBinary)
    update_cid: Mapped[str] = mapped_column(String(100))
    salt: Mapped[str] = mapped_column(String(66))
    num_samples: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="prepared")
    commit_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    reveal_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)


class RoundRecord(Base):
    """The aggregator's outcome of a round, written before ``finalizeRound`` is sent."""

    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("contract", "project_id", "round"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    project_id: Mapped[int] = mapped_column(BigInteger)
    round: Mapped[int] = mapped_column(Integer)
    model_cid: Mapped[str] = mapped_column(String(100))
    report_cid: Mapped[str] = mapped_column(String(100))
    rewards_root: Mapped[str] = mapped_column(String(66))
    total_wei: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="computed")
    finalize_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)


class Claim(Base):
    """A reward claimed by a trainer (amounts in wei as decimal strings: they exceed 2⁶³)."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("contract", "project_id", "round", "account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    project_id: Mapped[int] = mapped_column(BigInteger)
    round: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(42))
    amount_wei: Mapped[str] = mapped_column(String(80))
    tx: Mapped[str] = mapped_column(String(66))


class TrainerHistory(Base):
    """Per-trainer state a stateful rule (SybilWall) keeps across rounds, as JSON."""

    __tablename__ = "trainer_history"
    __table_args__ = (UniqueConstraint("contract", "project_id", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    project_id: Mapped[int] = mapped_column(BigInteger)
    rule: Mapped[str] = mapped_column(String(40))
    state_json: Mapped[str] = mapped_column(Text)


class ServiceCursor(Base):
    """How far a long-running service has followed a market's events, and the hash of the
    last block it read there (a different hash at that height means a restart or reorg)."""

    __tablename__ = "service_cursors"
    __table_args__ = (UniqueConstraint("contract", "service"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    service: Mapped[str] = mapped_column(String(80))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    next_block: Mapped[int] = mapped_column(BigInteger)
    last_block: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    genesis_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)


class Intent(Base):
    """A transaction a service is about to send, written before sending: after a crash the
    service waits for that nonce to settle and reads the chain before sending again."""

    __tablename__ = "intents"
    __table_args__ = (UniqueConstraint("contract", "account", "action", "project_id", "round"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    account: Mapped[str] = mapped_column(String(42))
    action: Mapped[str] = mapped_column(String(24))
    project_id: Mapped[int] = mapped_column(BigInteger)
    round: Mapped[int] = mapped_column(Integer)
    nonce: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="sending")
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)


class ProjectChoice(Base):
    """A service's decision about a project (join / serve it or not, and why)."""

    __tablename__ = "project_choices"
    __table_args__ = (UniqueConstraint("contract", "service", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(42))
    service: Mapped[str] = mapped_column(String(80))
    project_id: Mapped[int] = mapped_column(BigInteger)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
