"""Fixtures of the service tests (helpers live in service_helpers.py)."""

from __future__ import annotations

import pytest
from service_helpers import REWARD, WINDOWS, World

from market.owner import create_project
from market.storage import EmbeddedStore
from market.trainer.model import ModelSpec


@pytest.fixture(params=["sqlite"])
def backend(request) -> str:
    """SQLite; tests parametrized with ``backends()`` run on PostgreSQL too."""
    return request.param


@pytest.fixture
def world(market_env, tmp_path, backend) -> World:
    store_path = tmp_path / "store"
    start = market_env.w3.eth.block_number + 1
    created = create_project(
        market_env.market,
        EmbeddedStore(store_path),
        market_env.owner,
        aggregator=market_env.aggregator.address,
        rounds=1,
        reward_per_round_wei=REWARD,
        windows=WINDOWS,
        name="svc",
        model=ModelSpec(hidden=(16,)),
        training={"epochs": 1, "lr": 0.1, "batch_size": 64},
        max_update_bytes=200_000,
    )
    return World(market_env, tmp_path, backend, created.project_id, start, store_path)
