"""Persistence for trainers and the aggregator (SQLite by default, PostgreSQL by URL)."""

from market.db.models import (
    Base,
    Claim,
    Intent,
    ProjectChoice,
    RoundRecord,
    ServiceCursor,
    Submission,
    TrainerHistory,
)
from market.db.session import Database, head_revision, upgrade

__all__ = [
    "Base",
    "Claim",
    "Database",
    "Intent",
    "ProjectChoice",
    "RoundRecord",
    "ServiceCursor",
    "Submission",
    "TrainerHistory",
    "head_revision",
    "upgrade",
]
