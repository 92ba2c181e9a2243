"""The one-shot commands' tables: submissions, rounds, claims, trainer history.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("trainer", sa.String(42), nullable=False),
        sa.Column("update", sa.LargeBinary(), nullable=False),
        sa.Column("update_cid", sa.String(100), nullable=False),
        sa.Column("salt", sa.String(66), nullable=False),
        sa.Column("num_samples", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("commit_tx", sa.String(66), nullable=True),
        sa.Column("reveal_tx", sa.String(66), nullable=True),
        sa.UniqueConstraint("contract", "project_id", "round", "trainer"),
    )
    op.create_table(
        "rounds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("model_cid", sa.String(100), nullable=False),
        sa.Column("report_cid", sa.String(100), nullable=False),
        sa.Column("rewards_root", sa.String(66), nullable=False),
        sa.Column("total_wei", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("finalize_tx", sa.String(66), nullable=True),
        sa.UniqueConstraint("contract", "project_id", "round"),
    )
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("amount_wei", sa.String(80), nullable=False),
        sa.Column("tx", sa.String(66), nullable=False),
        sa.UniqueConstraint("contract", "project_id", "round", "account"),
    )
    op.create_table(
        "trainer_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.UniqueConstraint("contract", "project_id", "rule"),
    )


def downgrade() -> None:
    for table in ("trainer_history", "claims", "rounds", "submissions"):
        op.drop_table(table)
