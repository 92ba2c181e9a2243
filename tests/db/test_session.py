"""Opening a database migrates it to the newest schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

import market.db.reputation  # noqa: F401 - every table on the shared Base
from market.db import Base, Database, RoundRecord, Submission, head_revision, upgrade
from market.db.models import Base as LegacyBase
from market.errors import ConfigError


def test_migrations_build_exactly_the_models_schema(db_url):
    db = Database(db_url)
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        version = conn.execute(text("select version_num from alembic_version")).scalar()
    assert version == head_revision()
    db.dispose()


def test_data_survives_reopen_and_big_integers_fit(db_url):
    db = Database(db_url)
    with db.session() as s:
        s.add(
            RoundRecord(
                contract="0x" + "ab" * 20,
                project_id=2**62,
                round=1,
                model_cid="m",
                report_cid="r",
                rewards_root="0x" + "00" * 32,
                total_wei=str(10**30),
            )
        )
    db.dispose()
    again = Database(db_url)
    with again.session() as s:
        row = s.scalar(select(RoundRecord))
    assert (row.project_id, int(row.total_wei), row.status) == (2**62, 10**30, "computed")
    again.dispose()


def test_database_made_before_migrations_is_stamped_and_upgraded(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    legacy = [LegacyBase.metadata.tables[t] for t in ("submissions", "rounds", "claims")]
    legacy.append(LegacyBase.metadata.tables["trainer_history"])
    LegacyBase.metadata.create_all(engine, tables=legacy)  # what create_all used to make
    with engine.begin() as conn:
        conn.execute(
            Submission.__table__.insert().values(
                contract="c",
                project_id=1,
                round=1,
                trainer="t",
                update=b"u",
                update_cid="x",
                salt="s",
                num_samples=3,
                status="committed",
            )
        )
    engine.dispose()
    db = Database(url)
    names = set(inspect(db.engine).get_table_names())
    assert {"service_cursors", "intents", "project_choices", "alembic_version"} <= names
    assert {"reputation_log", "reputation_cursors"} <= names
    with db.session() as s:
        assert s.scalar(select(Submission.status)) == "committed"
    db.dispose()


def test_downgrade_to_baseline_and_back(db_url):
    db = Database(db_url)
    from alembic import command
    from alembic.config import Config

    from market.db.session import MIGRATIONS

    with db.engine.connect() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
        conn.commit()
        assert not {"intents", "reputation_log"} & set(inspect(conn).get_table_names())
    upgrade(db.engine)
    assert "intents" in inspect(db.engine).get_table_names()
    db.dispose()


def test_bad_url_is_a_config_error_with_password_masked():
    with pytest.raises(ConfigError) as info:
        Database("nosuchdialect://user:hunter2@127.0.0.1/db")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_reputation_tables_made_by_ensure_tables_are_adopted(tmp_path):
    from market.db.reputation import ensure_tables

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = Database(url, migrate=False)
    ensure_tables(db.engine)  # the reputation service ran before migration 0003 existed
    upgrade(db.engine)
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    db.dispose()
