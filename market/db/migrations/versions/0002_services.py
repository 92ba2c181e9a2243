"""Long-running services: event cursors, transaction intents, project choices.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_cursors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("service", sa.String(80), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("next_block", sa.BigInteger(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=True),
        sa.Column("last_hash", sa.String(66), nullable=True),
        sa.UniqueConstraint("contract", "service"),
    )
    op.create_table(
        "intents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.UniqueConstraint("contract", "account", "action", "project_id", "round"),
    )
    op.create_table(
        "project_choices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("service", sa.String(80), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.UniqueConstraint("contract", "service", "project_id"),
    )


def downgrade() -> None:
    for table in ("project_choices", "intents", "service_cursors"):
        op.drop_table(table)
