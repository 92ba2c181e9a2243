"""Fixtures of the service tests (helpers live in service_helpers.py)."""

from __future__ import annotations

import pytest
from service_helpers import World, new_world


@pytest.fixture(params=["sqlite"])
def backend(request) -> str:
    """SQLite; tests parametrized with ``backends()`` run on PostgreSQL too."""
    return request.param


@pytest.fixture
def world(market_env, tmp_path, backend) -> World:
    return new_world(market_env, tmp_path, backend, "svc")
