"""Service cursors remember the chain's genesis hash (a restarted dev chain has a new one).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_cursors") as batch:
        batch.add_column(sa.Column("genesis_hash", sa.String(66), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_cursors") as batch:
        batch.drop_column("genesis_hash")
