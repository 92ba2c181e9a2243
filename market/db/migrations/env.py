"""Alembic environment: migrate the connection `Database` hands over, or ``-x url=…``.

Run by hand with ``alembic -c market/db/alembic.ini -x url=postgresql+psycopg://… upgrade head``;
``Database`` runs the same upgrade itself on open.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import market.db.reputation  # noqa: F401 - its tables are on the shared Base
from market.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = create_engine(url)
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
