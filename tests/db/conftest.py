"""Database URLs for the db tests: a SQLite file, and a fresh database on a throwaway
PostgreSQL cluster when the server is installed (scripts/install-postgres.sh)."""

from __future__ import annotations

import pytest

from market.db.pgcluster import find_pg_bin, shared_cluster


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(find_pg_bin() is None, reason="no PostgreSQL server"),
        ),
    ]
)
def db_url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return shared_cluster().create_database()
    return f"sqlite:///{tmp_path / 'market.db'}"
