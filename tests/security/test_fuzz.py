"""CI's bounded stateful-fuzzing campaign (the big one: ``python -m tests.security.fuzz``)."""

from __future__ import annotations

import pytest

from market.chain import AnvilNode
from tests.security.fuzz import campaign


@pytest.mark.slow
def test_market_matches_its_model_under_random_calls():
    """Random actors, calls and clock jumps: the chain agrees with the model on every call
    (error or events and state), the escrow balances and nobody is paid beyond allocation."""
    with AnvilNode.start() as node:
        stats = campaign(node, examples=100, steps=50, derandomize=True)
    print(stats.as_dict())
    assert stats.calls > 1000
    assert {"claim", "claimExpired", "refund", "finalizeRound", "expireRound"} <= set(stats.done)
