"""The CLI as a user types it, against a real anvil and the embedded store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from market.chain import AnvilNode

MARKET = str(Path(sys.executable).parent / "market")

pytestmark = pytest.mark.slow


@pytest.fixture
def chain(tmp_path):
    with AnvilNode.start() as node:
        yield node.rpc_url, tmp_path


def market(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([MARKET, *args], capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert proc.returncode == 0, f"market {' '.join(args)}:\n{proc.stderr[-3000:]}"
    return proc


def as_json(*args: str) -> dict:
    return json.loads(market(*args, "--json").stdout)


def test_a_whole_round_through_the_cli(chain):
    rpc, data = chain
    common = ["--rpc-url", rpc, "--data-dir", str(data)]
    deployed = as_json("dev", "deploy", *common)
    assert deployed["chain_id"] == 31337 and deployed["contract"].startswith("0x")

    created = as_json(
        "owner",
        "create-project",
        "--rounds",
        "1",
        "--reward-per-round",
        "0.5",
        "--submission-window",
        "3600",
        "--reveal-window",
        "3600",
        "--hidden",
        "16",
        *common,
    )
    assert created["project_id"] == 1 and created["budget_wei"] == 5 * 10**17
    assert created["spec_cid"].startswith("bafkrei")

    opened = as_json("aggregator", "open-round", "--project", "1", *common)
    assert opened["round"] == 1

    # trainer 3 joins and waits for the commit window to close; trainer 4 commits only and
    # reveals in a second command. The dev chain's clock is moved on instead of waiting.
    waiting = subprocess.Popen(
        [
            MARKET,
            "trainer",
            "join",
            "--project",
            "1",
            "--account",
            "3",
            "--part",
            "0",
            "--parts",
            "2",
            "--json",
            *common,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    committed = as_json(
        "trainer",
        "join",
        "--project",
        "1",
        "--account",
        "4",
        "--part",
        "1",
        "--parts",
        "2",
        "--no-wait",
        *common,
    )
    assert committed["commit_tx"] and "reveal_tx" not in committed
    early = market("trainer", "reveal", "--project", "1", "--account", "4", *common, check=False)
    assert early.returncode == 1 and "commit window is still open" in early.stderr
    for _ in range(300):  # until trainer 3 has committed too
        details = as_json("status", "--project", "1", *common)["projects"][0]["round_details"]
        if details[0]["commits"] == 2:
            break
        time.sleep(0.2)
    as_json("dev", "advance", "3700", "--rpc-url", rpc)
    stdout, stderr = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, stderr[-3000:]
    assert json.loads(stdout)["reveal_tx"]
    assert as_json("trainer", "reveal", "--project", "1", "--account", "4", *common)["reveal_tx"]
    as_json("dev", "advance", "3700", "--rpc-url", rpc)

    finalized = as_json("aggregator", "run-round", "--project", "1", *common)
    assert finalized["finalize_tx"] and finalized["total_wei"] > 0
    assert {s["status"] for s in finalized["submissions"]} == {"accepted"}

    claims = as_json("trainer", "claim", "--project", "1", "--account", "3", *common)
    assert claims["claims"][0]["claimed_wei"] > 0
    again = as_json("trainer", "claim", "--project", "1", "--account", "3", *common)
    assert again["claims"][0]["tx"] is None  # nothing left to claim

    status = as_json("status", "--project", "1", *common)
    (project,) = status["projects"]
    assert project["round_details"][0]["state"] == "finalized"
    assert project["round_details"][0]["claimed_wei"] == claims["claims"][0]["claimed_wei"]

    human = market("status", *common).stdout
    assert "finalized" in human


def test_store_commands_round_trip_and_verify(tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"hello market" * 50_000)  # > 256 KiB: a chunked UnixFS DAG
    common = ["--data-dir", str(tmp_path / "d")]
    cid = market("store", "cid", str(blob)).stdout.strip()
    assert market("store", "put", str(blob), *common).stdout.strip() == cid
    assert cid.startswith("bafybei")  # dag-pb root, as `ipfs add --raw-leaves` gives
    out = tmp_path / "copy.bin"
    got = as_json("store", "get", cid, "-o", str(out), *common)
    assert out.read_bytes() == blob.read_bytes() and got["size"] == blob.stat().st_size


def test_errors_are_one_readable_line(chain):
    rpc, data = chain
    proc = market("status", "--rpc-url", rpc, "--data-dir", str(data), check=False)
    assert proc.returncode == 1
    assert re.match(
        r"^error: no LearningMarket deployment known for chain 31337", proc.stderr.strip()
    )
    assert "Traceback" not in proc.stderr
    proc = market("status", "--rpc-url", "http://127.0.0.1:9", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error:")
    proc = market(
        "store",
        "get",
        "bafkreinotacid",
        "-o",
        str(data / "x"),
        "--data-dir",
        str(data),
        check=False,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error:")
    debug = market("status", "--rpc-url", rpc, "--data-dir", str(data), "--debug", check=False)
    assert "Traceback" in debug.stderr


def test_dev_chain_starts_deploys_and_stops(tmp_path):
    proc = subprocess.Popen(
        [MARKET, "dev", "chain", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for _ in range(50):
            line = proc.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "market dev chain printed no URL"
        deployment = json.loads((tmp_path / "deployments" / "31337.json").read_text())
        assert deployment["LearningMarket"].startswith("0x")
        status = as_json("status", "--rpc-url", url, "--data-dir", str(tmp_path))
        assert status["projects"] == []
    finally:
        proc.send_signal(2)  # Ctrl-C
        proc.wait(timeout=30)


def test_an_unprovable_proof_project_is_refused_before_it_exists(chain):
    rpc, data = chain
    common = ["--rpc-url", rpc, "--data-dir", str(data)]
    market("dev", "deploy", *common)
    proc = market(
        "owner", "create-project", "--proof", "--reward-per-round", "100000000000", *common,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert re.match(r"^error: reward per round \d+ wei is too large to prove", proc.stderr)
    assert as_json("status", *common)["projects"] == []


def test_aggregator_rules_lists_every_rule_with_its_defaults():
    from market.aggregator.rules import RULES

    listed = json.loads(market("aggregator", "rules", "--json").stdout)["rules"]
    assert {r["name"] for r in listed} == set(RULES)
    trimmed = next(r for r in listed if r["name"] == "trimmed_mean")
    assert trimmed["parameters"] == {"f": None, "byzantine_fraction": 0.3, "flag_below": 0.5}
    table = market("aggregator", "rules").stdout
    assert "guard" in table and "byzantine_fraction=0.3" in table.replace("\n", "")
