"""Round phases as the timeline shows them (pure: no chain)."""

from __future__ import annotations

import pytest

from market.api.views import phase
from market.chain import ZERO32, Round, RoundState


def round_in(state: RoundState) -> Round:
    return Round(1, 1, state, 100, 200, 300, 0, 0, ZERO32, ZERO32, ZERO32, ZERO32, ZERO32, 0, 0, 0)


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (RoundState.NONE, 0, "unopened"),
        (RoundState.OPEN, 99, "open"),
        (RoundState.OPEN, 100, "reveal"),
        (RoundState.OPEN, 200, "submitted"),
        (RoundState.OPEN, 300, "expirable"),
        (RoundState.FINALIZED, 0, "finalized"),
        (RoundState.EXPIRED, 0, "expired"),
    ],
)
def test_phase_follows_the_deadlines(state: RoundState, now: int, expected: str) -> None:
    assert phase(round_in(state), now) == expected


def test_unreachable_chain_is_reported_not_crashed() -> None:
    from fastapi.testclient import TestClient

    from market.api import Settings, create_app

    client = TestClient(create_app(Settings(rpc_url="http://127.0.0.1:9")))
    health = client.get("/api/health").json()
    assert not health["ok"] and "http://127.0.0.1:9" in health["error"]
    projects = client.get("/api/projects")
    assert projects.status_code == 503 and "cannot reach" in projects.json()["error"]
