"""The daemon helper and the start/stop script: restarts lose nothing, stops leave nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from market.errors import StorageError
from market.storage.ipfs import IpfsNodeStore, NodeUnavailableError
from market.storage.ipfs_daemon import REPO_ROOT, IpfsDaemon

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_node_restarted_mid_run_retries_and_loses_no_upload(
    ipfs_installed: None, tmp_path: Path
) -> None:
    daemon = IpfsDaemon(tmp_path / "repo")
    daemon.start()
    patient = IpfsNodeStore(daemon.api_url, timeout=20, retries=6, backoff=0.5)
    hasty = IpfsNodeStore(daemon.api_url, timeout=2, retries=1, backoff=0.05)
    try:
        before = os.urandom(MIB + 3)
        before_cid = patient.put(before)

        # Restart while a 20 MiB upload is in flight: it lands or is retried, never lost.
        big = os.urandom(20 * MIB)
        result: dict[str, object] = {}

        def upload() -> None:
            try:
                result["cid"] = patient.put(big)
            except Exception as exc:  # reported below
                result["error"] = exc

        worker = threading.Thread(target=upload)
        worker.start()
        time.sleep(0.2)
        port = daemon.api_port
        daemon.restart()
        assert daemon.api_port == port
        worker.join(timeout=120)
        assert "error" not in result, result.get("error")

        # While the node is down: a clear error from a store with few retries, ...
        daemon.stop()
        with pytest.raises(NodeUnavailableError, match="unreachable"):
            hasty.put(b"while down")
        # ... and a patient store's call succeeds once the node is back.
        restarter = threading.Timer(1.0, daemon.start)
        restarter.start()
        during = os.urandom(300_000)
        during_cid = patient.put(during)
        restarter.join()

        for cid, data in [(before_cid, before), (result["cid"], big), (during_cid, during)]:
            assert patient.has(str(cid))
            assert patient.get(str(cid)) == data
    finally:
        patient.close()
        hasty.close()
        daemon.stop()


@pytest.mark.slow
def test_stop_leaves_no_process_and_start_failure_is_explained(
    ipfs_installed: None, tmp_path: Path
) -> None:
    daemon = IpfsDaemon(tmp_path / "repo")
    with daemon:
        pid = daemon.pid
        assert pid is not None and group_alive(pid)
    assert not group_alive(pid)
    assert daemon.pid is None
    assert not (daemon.repo / "daemon.pid").exists()

    with socket.socket() as taken:  # the API port is busy: the daemon cannot bind it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = IpfsDaemon(tmp_path / "repo", api_port=taken.getsockname()[1])
        with pytest.raises(StorageError, match="daemon"):
            busy.start(timeout=60)
        assert busy.pid is None


@pytest.mark.slow
def test_script_start_status_stop(ipfs_installed: None, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "IPFS_NODE_REPO": str(tmp_path / "repo"), "IPFS_API_PORT": str(port)}
    script = REPO_ROOT / "scripts" / "ipfs-node.sh"

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(script), command], env=env, capture_output=True, text=True, timeout=180
        )

    try:
        started = run("start")
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout
        assert run("status").returncode == 0
        with IpfsNodeStore(f"http://127.0.0.1:{port}") as store:
            assert store.get(store.put(b"by hand")) == b"by hand"
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert run("status").returncode == 3
