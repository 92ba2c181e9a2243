"""The persisted event cursor: resume after restart, detect a changed chain."""

from __future__ import annotations

import pytest

from market.chain import revert, snapshot
from market.db import Database, ServiceCursor
from market.db.follow import ChainChanged, Follower


def test_cursor_resumes_where_the_last_process_stopped(market_env, db_url):
    env = market_env
    start = env.w3.eth.block_number + 1
    db = Database(db_url)
    first = Follower(db, env.market, "t", start_block=start)
    env.create_project()
    assert [e["event"] for e in first.poll()] == ["ProjectCreated"]
    first.save()
    env.create_project()
    again = Follower(db, env.market, "t", start_block=start)  # a restarted service
    events = again.poll()
    assert [(e["event"], e["args"]["project_id"]) for e in events] == [("ProjectCreated", 2)]
    db.dispose()


def test_rewritten_history_is_reported_and_reread(market_env, tmp_path):
    env = market_env
    start = env.w3.eth.block_number + 1
    db = Database(f"sqlite:///{tmp_path / 'f.db'}")
    warnings: list[str] = []
    follower = Follower(db, env.market, "t", start_block=start, warn=warnings.append)
    snap = snapshot(env.w3)
    env.create_project(rounds=1)
    env.create_project(rounds=2)
    assert len(follower.poll()) == 2
    follower.save()
    revert(env.w3, snap)  # like a reorg: those blocks are replaced by others
    env.create_project(rounds=3)
    env.advance(1)
    events = follower.poll()
    assert warnings and "chain history changed" in warnings[0]
    assert [e["args"]["rounds"] for e in events] == [3]
    db.dispose()


def test_a_chain_without_the_contract_is_a_clear_error(market_env, tmp_path):
    env = market_env
    db = Database(f"sqlite:///{tmp_path / 'f.db'}")
    follower = Follower(db, env.market, "t")
    code = env.w3.eth.get_code(env.market.address)
    env.w3.provider.make_request("anvil_setCode", [env.market.address, "0x"])
    try:
        with pytest.raises(ChainChanged, match="restarted without its state"):
            follower.poll()
    finally:
        env.w3.provider.make_request("anvil_setCode", [env.market.address, "0x" + code.hex()])
    db.dispose()


def test_a_restarted_dev_chain_is_refused_with_a_clear_message(market_env, tmp_path):
    env = market_env
    db = Database(f"sqlite:///{tmp_path / 'f.db'}")
    follower = Follower(db, env.market, "t")
    follower.poll()
    follower.save()
    with db.session() as s:  # as if this database had followed an earlier anvil
        s.query(ServiceCursor).one().genesis_hash = "0x" + "11" * 32
    with pytest.raises(ChainChanged, match="dev chain was restarted"):
        Follower(db, env.market, "t")
    db.dispose()
