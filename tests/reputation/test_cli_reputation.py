"""``market reputation``, ``market trainer apply`` and admission-aware rounds, as typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from market.chain import AnvilNode, LearningMarket, connect, dev_accounts, increase_time
from market.db import Database
from market.reputation import record_application, sign_application
from market.storage import open_store
from tests.reputation.helpers import create_project, pay_round

MARKET = str(Path(sys.executable).parent / "market")

pytestmark = pytest.mark.slow


def market(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([MARKET, *args], capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert proc.returncode == 0, f"market {' '.join(args)}:\n{proc.stderr[-3000:]}"
    return proc


def as_json(*args: str) -> dict:
    return json.loads(market(*args, "--json").stdout)


def test_apply_preview_open_show_and_join_with_admission(tmp_path):
    with AnvilNode.start() as node:
        common = ["--rpc-url", node.rpc_url, "--data-dir", str(tmp_path)]
        contract = as_json("dev", "deploy", *common)["contract"]
        w3 = connect(node.rpc_url)
        accounts = dev_accounts(w3)
        env = SimpleNamespace(
            w3=w3,
            market=LearningMarket(w3, contract),
            aggregator=accounts[2],
            advance=lambda seconds: increase_time(w3, seconds),
        )
        store = open_store("embedded", tmp_path)
        history = create_project(env, store, accounts[1])  # the CLI's owner: account 1
        pay_round(env, store, history, {accounts[3].address: 10**17, accounts[4].address: 10**17})

        created = as_json(
            "owner", "create-project", "--rounds", "1", "--hidden", "8",
            "--admission", "top_k=2,min_reputation=0.01,newcomer_quota=1", *common,
        )  # fmt: skip
        pid = str(created["project_id"])
        signed = as_json("trainer", "apply", "-p", pid, "--account", "3", *common)
        assert signed["round"] == 1 and signed["trainer"] == accounts[3].address
        db = Database.at(tmp_path)  # the others apply through the library, same database
        for index in (4, 5, 6):
            app = sign_application(accounts[index], int(pid), 1, w3.eth.chain_id, contract)
            record_application(db, app)

        preview = as_json("reputation", "admission", "-p", pid, "--preview", *common)
        known = {accounts[3].address, accounts[4].address}
        assert set(preview["established"]) == known and len(preview["newcomers"]) == 1

        opened = as_json("aggregator", "open-round", "-p", pid, *common)
        admission = opened["admission"]
        assert admission["root"] != "0x" + "00" * 32 and admission["cid"].startswith("bafkrei")
        shown = as_json("reputation", "admission", "-p", pid, "--verify", *common)
        assert shown["root_matches_chain"] and shown["root"] == admission["root"]
        assert shown["verification"]["ok"], shown["verification"]
        assert shown["admitted"] == admission["admitted"] and shown["applications"] == 4

        rep = as_json("reputation", "show", *common)
        top = {row["address"] for row in rep["projects"][str(history)]["top"]}
        assert top == known and rep["graph"]["rounds"] == 1

        joined = as_json("trainer", "join", "-p", pid, "--account", "3", "--no-wait", *common)
        assert joined["commit_tx"]
        refused = next(i for i in (5, 6) if accounts[i].address in shown["refused"])
        proc = market(
            "trainer", "join", "-p", pid, "--account", str(refused), "--no-wait", *common,
            check=False,
        )  # fmt: skip
        assert proc.returncode != 0 and "not admitted" in proc.stderr
