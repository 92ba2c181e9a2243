"""Database engine and sessions: a SQLite file by default, any SQLAlchemy URL by choice.

Opening a database upgrades its schema to the newest Alembic migration (SQLite and
PostgreSQL alike); a file created before migrations existed is recognised and stamped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from market.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the tables the one-shot commands created before migrations existed


class Database:
    """One engine per URL; ``session()`` commits on success and rolls back on error."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True)
        except Exception as exc:  # bad URL or missing driver
            raise ConfigError(
                f"cannot use database URL {_masked(url)}: {exc} "
                "(SQLite: sqlite:///path/market.db; PostgreSQL: postgresql+psycopg://user:pw@host/db)"
            ) from None
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            upgrade(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def at(cls, data_dir: Path, url: str | None = None) -> Database:
        if url:
            return cls(url)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'market.db'}")

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._factory() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


@lru_cache(maxsize=1)
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; two processes racing here is retried once."""
    for attempt in (1, 2):
        try:
            _upgrade_once(engine, revision)
            return
        except SQLAlchemyError as exc:
            if attempt == 2:
                raise ConfigError(
                    f"cannot migrate database {_masked(str(engine.url))}: "
                    f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
                ) from None


def _upgrade_once(engine: Engine, revision: str) -> None:
    with engine.connect() as connection:
        current = current_revision(connection)
        if revision == "head" and current == head_revision():
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        if current is None and inspect(connection).has_table("submissions"):
            command.stamp(config, BASELINE)  # created by create_all before migrations
        command.upgrade(config, revision)
        connection.commit()


def _masked(url: str) -> str:
    from market.config import mask_url

    return mask_url(url)


def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL + a busy timeout let several CLI processes (trainers, aggregator) share one file.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
