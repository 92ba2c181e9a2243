"""A trainer records which aggregator API accepted its signed application.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("reputation_applications")}
    if "delivered_to" not in columns:  # ensure_tables may have created the table already
        with op.batch_alter_table("reputation_applications") as batch:
            batch.add_column(sa.Column("delivered_to", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reputation_applications") as batch:
        batch.drop_column("delivered_to")
