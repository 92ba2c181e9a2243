"""``market serve``: loopback by default, dev keys never on a public listener."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from market.api.serve import is_loopback
from market.serving import free_port


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.2", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.slow
def test_serve_dev_chain_answers_and_stops_its_anvil(tmp_path: Path) -> None:
    port = free_port()
    market = Path(sys.executable).with_name("market")
    proc = subprocess.Popen(
        [str(market), "serve", "--dev-chain", "--port", str(port), "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert health and health["ok"] and health["dev_keys"], health
        assert (tmp_path / "deployments" / "31337.json").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    found = re.search(r"dev chain (http://127\.0\.0\.1:\d+)", output)
    assert found, output
    with pytest.raises(httpx.HTTPError):
        httpx.post(found[1], json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=2)
