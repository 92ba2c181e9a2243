"""The local anvil node: start, RPC, block time, and no orphan process after stop."""

from __future__ import annotations

import os
import time

import pytest

from market.chain import AnvilNode, chain_time, connect, find_anvil
from market.errors import ChainError, ConfigError


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_find_anvil_returns_an_executable():
    path = find_anvil()
    assert path.is_file() and os.access(path, os.X_OK)


def test_find_anvil_honours_env_and_rejects_bad_path(monkeypatch, tmp_path):
    monkeypatch.setenv("MARKET_ANVIL", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="MARKET_ANVIL"):
        find_anvil()


def test_node_stops_without_leaving_a_process():
    with AnvilNode.start() as node:
        pid = node.pid
        assert node.rpc_url.startswith("http://127.0.0.1:")
        assert connect(node.rpc_url).eth.chain_id == 31337
        assert "Listening on" in node.output()
    assert not node.is_running()
    assert not _alive(pid)
    node.stop()  # idempotent


def test_block_time_mines_on_its_own_and_transactions_wait_for_a_block():
    from market.chain import deploy_market, dev_accounts

    with AnvilNode.start(block_time=0.5) as node:
        w3 = connect(node.rpc_url)
        first = w3.eth.block_number
        time.sleep(1.1)
        assert w3.eth.block_number > first
        accounts = dev_accounts(w3)
        market = deploy_market(w3, accounts[0])
        pid, result = market.create_project(
            accounts[0], b"\1" * 32, accounts[1].address, 1, 10, 60, 60, 60
        )
        assert pid == 1 and result.block_number > first


def test_chain_id_option():
    with AnvilNode.start(chain_id=4242) as node:
        assert connect(node.rpc_url).eth.chain_id == 4242


def test_connect_to_nothing_raises_chain_error():
    with AnvilNode.start() as node:
        url = node.rpc_url
    with pytest.raises(ChainError, match="cannot reach"):
        connect(url, timeout=2)


def test_session_node_answers(anvil, w3):
    assert anvil.is_running()
    assert chain_time(w3) > 0


def test_node_dies_with_a_killed_parent(tmp_path):
    """A Python process killed with SIGKILL (no exit hooks) leaves no anvil behind."""
    import signal
    import subprocess
    import sys

    script = (
        "from market.chain import AnvilNode\n"
        "import os, sys, time\n"
        "node = AnvilNode.start()\n"
        "print(node.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        anvil_pid = int(parent.stdout.readline())
        assert _alive(anvil_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(anvil_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(anvil_pid)
    finally:
        parent.kill()
        parent.wait()


def test_recent_states_stay_queryable():
    """Requests resolved at a block that another sender's transaction has just superseded
    must still find its state (the bare --prune-history kept only the latest one)."""
    with AnvilNode.start() as node:
        w3 = connect(node.rpc_url)
        address = w3.eth.accounts[0]
        for _ in range(5):
            w3.provider.make_request("evm_mine", [])
        head = w3.eth.block_number
        for block in range(head - 4, head + 1):
            assert w3.eth.get_balance(address, block) > 0
