"""Fixtures for the chain tests: an open round, a revealed round."""

from __future__ import annotations

import pytest
from chain_helpers import digest, make_update


@pytest.fixture
def open_round(market_env):
    """Create a project and open its first round; returns (project_id, round)."""

    def make(rounds: int = 2, reward: int = 10**18, windows=(100, 100, 100), root=b"\0" * 32):
        pid = market_env.create_project(rounds=rounds, reward_per_round=reward, windows=windows)
        rnd, _ = market_env.market.open_round(market_env.aggregator, pid, digest("model0"), root)
        return pid, rnd

    return make


@pytest.fixture
def revealed_round(market_env, open_round):
    """A round where ``n`` trainers committed and revealed; the clock sits in the reveal
    window. Returns (project_id, round, updates)."""

    def make(n: int = 3, **kwargs):
        pid, rnd = open_round(**kwargs)
        updates = [make_update(t) for t in market_env.trainers[:n]]
        for u in updates:
            market_env.market.commit_update(u.trainer, pid, rnd, u.commitment)
        market_env.advance(kwargs.get("windows", (100, 100, 100))[0] + 1)
        for u in updates:
            market_env.market.reveal_update(u.trainer, pid, rnd, u.update_digest, u.salt)
        return pid, rnd, updates

    return make
