"""The reputation service's tables: input log, cursor, applications, admissions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _missing(name: str) -> bool:
    # ``market.db.reputation.ensure_tables`` may have created them before this migration
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("reputation_cursors"):
        op.create_table(
            "reputation_cursors",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("contract", sa.String(42), nullable=False),
            sa.Column("chain_id", sa.BigInteger(), nullable=False),
            sa.Column("next_block", sa.BigInteger(), nullable=False),
            sa.Column("last_block", sa.BigInteger(), nullable=True),
            sa.Column("last_hash", sa.String(66), nullable=True),
            sa.UniqueConstraint("contract", "chain_id"),
        )
    if _missing("reputation_log"):
        op.create_table(
            "reputation_log",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("contract", sa.String(42), nullable=False),
            sa.Column("chain_id", sa.BigInteger(), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("block_number", sa.BigInteger(), nullable=False),
            sa.Column("block_hash", sa.String(66), nullable=False),
            sa.Column("entry_json", sa.Text(), nullable=False),
            sa.UniqueConstraint("contract", "chain_id", "seq"),
        )
        op.create_index(
            "ix_reputation_log_block_number", "reputation_log", ["block_number"], unique=False
        )
    if _missing("reputation_applications"):
        op.create_table(
            "reputation_applications",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("contract", sa.String(42), nullable=False),
            sa.Column("chain_id", sa.BigInteger(), nullable=False),
            sa.Column("project_id", sa.BigInteger(), nullable=False),
            sa.Column("round", sa.Integer(), nullable=False),
            sa.Column("trainer", sa.String(42), nullable=False),
            sa.Column("signature", sa.String(140), nullable=False),
            sa.UniqueConstraint("contract", "chain_id", "project_id", "round", "trainer"),
        )
    if _missing("reputation_admissions"):
        op.create_table(
            "reputation_admissions",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("contract", sa.String(42), nullable=False),
            sa.Column("chain_id", sa.BigInteger(), nullable=False),
            sa.Column("project_id", sa.BigInteger(), nullable=False),
            sa.Column("round", sa.Integer(), nullable=False),
            sa.Column("root", sa.String(66), nullable=False),
            sa.Column("cid", sa.String(100), nullable=False),
            sa.Column("admitted", sa.Integer(), nullable=False),
            sa.UniqueConstraint("contract", "chain_id", "project_id", "round"),
        )


def downgrade() -> None:
    op.drop_index("ix_reputation_log_block_number", table_name="reputation_log")
    for table in (
        "reputation_admissions",
        "reputation_applications",
        "reputation_log",
        "reputation_cursors",
    ):
        op.drop_table(table)
