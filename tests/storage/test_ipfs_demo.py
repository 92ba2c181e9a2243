"""The whole demo round against a real js-ipfs node instead of the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from market.storage import cid_of
from market.storage.ipfs import IpfsNodeStore

MARKET = str(Path(sys.executable).parent / "market")

pytestmark = pytest.mark.slow


def test_demo_round_runs_on_a_real_ipfs_node(ipfs_node, tmp_path):
    proc = subprocess.run(
        [
            MARKET,
            "demo",
            "--rounds",
            "1",
            "--trainers",
            "3",
            "--json",
            "--store",
            f"ipfs:{ipfs_node.api_url}",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["balanced"] is True
    (round_row,) = summary["rounds"]
    node = IpfsNodeStore(ipfs_node.api_url)
    model = node.get(round_row["model_cid"])  # the node serves what the chain recorded
    assert cid_of(model) == round_row["model_cid"]
    assert not (tmp_path / "store").exists()  # nothing went to the embedded store


def test_store_commands_with_the_node(ipfs_node, tmp_path):
    blob = tmp_path / "b.bin"
    blob.write_bytes(b"x" * 300_000)
    env = {**os.environ, "MARKET_IPFS_API": ipfs_node.api_url}  # bare `--store ipfs` reads it

    def store(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [MARKET, "store", *args, "--store", "ipfs", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )

    put = store("put", str(blob))
    assert put.returncode == 0, put.stderr
    cid = json.loads(put.stdout)["cid"]
    assert cid == cid_of(blob.read_bytes())
    got = store("get", cid, "-o", str(tmp_path / "c.bin"))
    assert got.returncode == 0 and (tmp_path / "c.bin").read_bytes() == blob.read_bytes()
