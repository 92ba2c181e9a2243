"""The functions behind ``market reputation …`` (the CLI test covers the typed commands)."""

from __future__ import annotations

import pytest

from market.db import Database
from market.errors import ReputationError
from market.reputation import AdmissionPolicy
from market.reputation.commands import admission, parse_admission, show
from market.storage import EmbeddedStore
from tests.reputation.helpers import create_project, pay_round


def test_parse_admission_accepts_open_pairs_and_json_and_refuses_nonsense():
    assert parse_admission("open") == {"policy": "open"}
    policy = AdmissionPolicy(top_k=5, min_reputation=0.01, newcomer_quota=2)
    assert parse_admission("top_k=5, min_reputation=0.01,newcomer_quota=2") == policy.to_dict()
    assert parse_admission('{"top_k": 5, "min_reputation": 0.01, "newcomer_quota": 2}') == (
        policy.to_dict()
    )
    for bad in ("top_k", "{nope", "top_k=1,colour=red", "top_k=-1"):
        with pytest.raises(ReputationError):
            parse_admission(bad)


@pytest.mark.slow
def test_show_one_address_and_admission_of_open_rounds(market_env, tmp_path):
    env = market_env
    store = EmbeddedStore(tmp_path / "store")
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    pid = create_project(env, store, env.owner, None)
    pay_round(env, store, pid, {env.trainers[0].address: 10**17})
    one = show(env.market, store, db, address=env.trainers[0].address.lower())
    assert one["in_graph"] and one["reputation"][str(pid)] > 0.1
    assert show(env.market, store, db, address=env.trainers[1].address)["in_graph"] is False
    assert admission(env.market, store, db, pid)["open"] is True  # round 1 had a zero root
    assert admission(env.market, store, db, pid, preview=True)["open"] is True
    with pytest.raises(ReputationError, match="no round yet"):
        admission(env.market, store, db, create_project(env, store, env.owner, None))
