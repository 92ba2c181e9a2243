"""What trainers and the aggregator must remember between commands and across crashes.

Intent is recorded before each transaction (the trainer's salt before ``commitUpdate``),
so a restarted process reconciles with the chain instead of guessing.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, UniqueConstraint
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
