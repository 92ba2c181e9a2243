"""Persistence for trainers and the aggregator (SQLite by default, PostgreSQL by URL)."""

from market.db.models import Base, Claim, RoundRecord, Submission, TrainerHistory
from market.db.session import Database

__all__ = ["Base", "Claim", "Database", "RoundRecord", "Submission", "TrainerHistory"]
