"""Intent before send: a transaction still pending from a killed process is waited for,
never sent a second time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from market.chain import mine
from market.db import Database, Intent
from market.db.intents import TxGuard


def test_action_whose_effect_is_on_chain_is_not_sent(market_env, tmp_path):
    env = market_env
    db = Database(f"sqlite:///{tmp_path / 'i.db'}")
    guard = TxGuard(db, env.w3, env.market.address, env.outsider.address, "trainer")
    sent = []
    assert guard.run("x", 1, 1, lambda: True, lambda: sent.append(1)) is None
    assert guard.run("x", 1, 2, lambda: False, lambda: sent.append(2) or "tx") == "tx"
    assert sent == [2]
    db.dispose()


def test_pending_transaction_of_a_crashed_attempt_is_awaited(market_env, tmp_path):
    env, w3 = market_env, market_env.w3
    account = env.outsider
    db = Database(f"sqlite:///{tmp_path / 'i.db'}")
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    with db.session() as s:  # what a process killed right after sending left behind
        s.add(
            Intent(
                contract=env.market.address,
                account=account.address,
                action="claim",
                project_id=1,
                round=1,
                nonce=nonce,
                status="sending",
            )
        )
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        tx = {
            "to": env.owner.address,
            "value": 1,
            "gas": 21_000,
            "gasPrice": 2 * w3.eth.gas_price,
            "nonce": nonce,
            "chainId": w3.eth.chain_id,
        }
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        timer = threading.Timer(0.5, lambda: mine(w3))
        timer.start()
        guard = TxGuard(db, w3, env.market.address, account.address, "trainer", poll=0.05)
        sent = []
        mined = lambda: w3.eth.get_transaction_receipt(tx_hash) is not None  # noqa: E731
        assert guard.run("claim", 1, 1, mined, lambda: sent.append(1)) is None
        timer.join()
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    assert sent == []
    db.dispose()


def test_confirmations_are_awaited_and_recorded(market_env, tmp_path):
    env, w3 = market_env, market_env.w3
    db = Database(f"sqlite:///{tmp_path / 'i.db'}")
    guard = TxGuard(db, w3, env.market.address, env.owner.address, "owner", confirmations=3)
    project_id = env.create_project()
    result = guard.run(
        "cancel",
        project_id,
        0,
        lambda: env.market.get_project(project_id).cancelled,
        lambda: env.market.cancel_project(env.owner, project_id),
    )
    assert w3.eth.block_number - result.block_number >= 3
    with db.session() as s:
        row = s.query(Intent).one()
    assert (row.status, row.tx_hash) == ("done", result.tx_hash)
    db.dispose()


KILLED_AFTER_SEND = """
import sys
from market.chain import connect, dev_accounts, send_transaction
from market.db import Database
from market.db.intents import TxGuard

rpc, db_url, contract, to = sys.argv[1:5]
w3 = connect(rpc)
account = dev_accounts(w3)[9]
guard = TxGuard(Database(db_url), w3, contract, account.address, "tester")
poke = lambda: send_transaction(w3, account, {"to": to, "value": 1})  # noqa: E731
guard.run("poke", 1, 1, lambda: False, poke)
"""


def test_hash_is_recorded_at_send_and_a_restart_finds_the_transaction_by_it(market_env, tmp_path):
    """SIGKILLed right after the node took the transaction, before its receipt: the intent
    already holds the hash, and the restarted guard waits for that very transaction."""
    env, w3 = market_env, market_env.w3
    account = env.outsider
    url = f"sqlite:///{tmp_path / 'i.db'}"
    before = w3.eth.get_transaction_count(account.address)
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_AFTER_SEND, env.node.rpc_url, url]
            + [env.market.address, env.owner.address],
            env=dict(os.environ, MARKET_TEST_CRASH_AT="tester.poke.sent"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert killed.returncode == -9, killed.stderr
        db = Database(url)
        with db.session() as s:
            row = s.query(Intent).one()
        assert row.status == "sending" and row.tx_hash is not None
        pending = w3.eth.get_transaction(row.tx_hash)
        assert pending["blockNumber"] is None and pending["nonce"] == row.nonce == before

        timer = threading.Timer(0.5, lambda: mine(w3))
        timer.start()
        guard = TxGuard(db, w3, env.market.address, account.address, "tester", poll=0.05)
        mined = lambda: w3.eth.get_transaction_count(account.address) > before  # noqa: E731
        assert guard.run("poke", 1, 1, mined, lambda: pytest.fail("sent twice")) is None
        timer.join()
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    assert w3.eth.get_transaction_receipt(row.tx_hash)["status"] == 1
    assert w3.eth.get_transaction_count(account.address) == before + 1
    with db.session() as s:
        assert (s.query(Intent).one().status, s.query(Intent).one().tx_hash) == (
            "done",
            row.tx_hash,
        )
    db.dispose()
