"""Run a real IPFS node (js-ipfs from ``tools/ipfs``) on 127.0.0.1, for tests and by hand.

Kubo cannot be installed here (its npm packages download the Go binary), so the node is
js-ipfs 0.66.1, which speaks the same Kubo RPC API. ``scripts/install-ipfs.sh`` installs
it; :class:`IpfsDaemon` inits a repo with the ``test`` profile (no bootstrap peers, no
mDNS), binds the API and gateway to 127.0.0.1 (port 0 = a free one, read back from the
repo's ``api`` file), runs ``daemon --offline`` and stops it by process group so nothing
is left behind. A restart keeps the repo and the API port, so pinned content and the URL
survive it.

By hand: ``python -m market.storage.ipfs_daemon start|stop|status`` (or
``scripts/ipfs-node.sh``), which leaves the node running in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx

from market.errors import ConfigError, StorageError
from market.process import pid_alive

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOOLS_DIR = REPO_ROOT / "tools" / "ipfs"
DEFAULT_HUMAN_REPO = REPO_ROOT / ".market" / "ipfs"
PID_FILE = "daemon.pid"
LOG_FILE = "daemon.log"
FATAL_MARKS = ("EADDRINUSE", "EACCES", "EADDRNOTAVAIL", "Error:", "lock file")


def _tools_dir() -> Path:
    return Path(os.environ.get("MARKET_IPFS_TOOLS", DEFAULT_TOOLS_DIR))


def node_command(tools_dir: Path | None = None) -> list[str]:
    """The argv prefix that runs the ``jsipfs`` CLI (Node 20 + the withResolvers polyfill)."""
    tools = tools_dir or _tools_dir()
    cli = tools / "node_modules" / "ipfs" / "src" / "cli.js"
    node = shutil.which("node")
    if node is None:
        raise ConfigError("Node.js is not installed: the IPFS node (js-ipfs) needs Node >= 20")
    if not cli.is_file():
        raise ConfigError(
            f"js-ipfs is not installed ({cli} missing); run scripts/install-ipfs.sh first"
        )
    return [node, "-r", str(tools / "polyfill.cjs"), str(cli)]


def install_node(timeout: float = 900.0) -> None:
    """Run ``scripts/install-ipfs.sh`` (a 0.2 s no-op once installed); ConfigError if it fails."""
    script = REPO_ROOT / "scripts" / "install-ipfs.sh"
    try:
        done = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{script.name} could not run: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise ConfigError(f"{script.name} failed (exit {done.returncode}):\n{tail}")


def _die_with_parent() -> None:
    """Child side of Popen: get SIGTERM if the test process dies without cleaning up."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class IpfsDaemon:
    """One js-ipfs daemon on a repo directory; a context manager that stops it on exit."""

    def __init__(
        self,
        repo: Path,
        *,
        api_port: int = 0,
        gateway_port: int = 0,
        tools_dir: Path | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.repo = Path(repo)
        self.api_port = api_port
        self.gateway_port = gateway_port
        self.tools_dir = tools_dir or _tools_dir()
        self.die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def __repr__(self) -> str:
        return f"IpfsDaemon(repo={str(self.repo)!r}, api={self.api_url!r})"

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the RPC API (the port is known once started)."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_path(self) -> Path:
        return self.repo / LOG_FILE

    @property
    def pid(self) -> int | None:
        """The daemon's pid: ours if we started it, else the repo's pid file if alive."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.repo / PID_FILE).read_text().strip())
            if pid_alive(pid):
                return pid
        return None

    def running(self) -> bool:
        return self.pid is not None

    def live_api_url(self) -> str:
        """The URL a running daemon actually listens on (its repo's ``api`` file)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return f"http://127.0.0.1:{int((self.repo / 'api').read_text().split('/')[4])}"
        return self.api_url

    # -- lifecycle --------------------------------------------------------------------------

    def init(self) -> None:
        """Create the repo with the test profile once; rewrite the addresses every time."""
        config = self.repo / "config"
        if not config.exists():
            self.repo.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [*node_command(self.tools_dir), "init", "--profile", "test"],
                env=self._env(),
                capture_output=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0 or not config.exists():
                raise StorageError(
                    f"jsipfs init failed in {self.repo}: {done.stderr.decode(errors='replace')}"
                )
        cfg = json.loads(config.read_text())
        addresses = cfg.setdefault("Addresses", {})
        addresses["API"] = f"/ip4/127.0.0.1/tcp/{self.api_port}"
        addresses["Gateway"] = f"/ip4/127.0.0.1/tcp/{self.gateway_port}"
        addresses["RPC"] = "/ip4/127.0.0.1/tcp/0"
        addresses["Swarm"] = []
        addresses["Announce"] = []
        cfg["Bootstrap"] = []
        cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
        tmp = config.with_suffix(".tmp")
        tmp.write_text(json.dumps(cfg, indent=2))
        tmp.replace(config)

    def start(self, timeout: float = 90.0) -> str:
        """Start ``daemon --offline`` and return the API URL once ``version`` answers."""
        if self.running():
            raise StorageError(f"an IPFS daemon already runs on {self.repo} (pid {self.pid})")
        self.init()
        # Leftovers of a daemon that was killed: nothing runs on this repo (checked above).
        for stale in ("api", "repo.lock"):
            path = self.repo / stale
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self._log_start = log.tell()
        try:
            self._proc = subprocess.Popen(
                [*node_command(self.tools_dir), "daemon", "--offline"],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if self._tie_to_parent() else None,
            )
        finally:
            log.close()
        (self.repo / PID_FILE).write_text(f"{self._proc.pid}\n")
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.api_url

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the daemon's process group, SIGKILL it if it lingers; idempotent."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                while self._alive(pid):
                    time.sleep(0.05)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        (self.repo / PID_FILE).unlink(missing_ok=True)

    def restart(self, timeout: float = 90.0) -> str:
        """Stop and start again on the same repo and API port."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> IpfsDaemon:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _tie_to_parent(self) -> bool:
        # PDEATHSIG fires when the creating *thread* exits: only tie from the main thread.
        return self.die_with_parent and threading.current_thread() is threading.main_thread()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["IPFS_PATH"] = str(self.repo)
        env.pop("NODE_OPTIONS", None)
        return env

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return pid_alive(pid)

    def _log_tail(self, n: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def _fatal_log_line(self) -> str | None:
        """js-ipfs logs some start failures (a busy port) and then hangs instead of exiting."""
        with contextlib.suppress(OSError), self.log_path.open("rb") as f:
            f.seek(self._log_start)
            for line in f.read().decode(errors="replace").splitlines():
                if any(mark in line for mark in FATAL_MARKS):
                    return line.strip()
        return None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        api_file = self.repo / "api"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise StorageError(
                    f"the IPFS daemon exited with {self._proc.returncode} at start; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            fatal = self._fatal_log_line()
            if fatal is not None:
                raise StorageError(
                    f"the IPFS daemon failed to start ({fatal}); "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            if api_file.exists():
                with contextlib.suppress(ValueError, IndexError, OSError):
                    # /ip4/127.0.0.1/tcp/PORT/http
                    self.api_port = int(api_file.read_text().strip().split("/")[4])
                with contextlib.suppress(httpx.HTTPError):
                    r = httpx.post(f"{self.api_url}/api/v0/version", timeout=2.0, trust_env=False)
                    if r.status_code == 200:
                        return
            time.sleep(0.1)
        raise StorageError(
            f"the IPFS daemon did not answer within {timeout:.0f}s; "
            f"log {self.log_path}:\n{self._log_tail()}"
        )


def main(argv: list[str] | None = None) -> int:
    """``start`` (detached), ``stop`` or ``status`` of a node on a persistent repo."""
    parser = argparse.ArgumentParser(prog="ipfs-node", description=main.__doc__)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--repo", type=Path, default=Path(os.environ.get("IPFS_NODE_REPO", "")))
    parser.add_argument(
        "--api-port", type=int, default=int(os.environ.get("IPFS_API_PORT", "5001"))
    )
    args = parser.parse_args(argv)
    repo = args.repo if str(args.repo) not in ("", ".") else DEFAULT_HUMAN_REPO
    daemon = IpfsDaemon(repo, api_port=args.api_port, die_with_parent=False)
    try:
        if args.command == "start":
            if daemon.running():
                print(f"already running (pid {daemon.pid}), API {daemon.live_api_url()}")
                return 0
            url = daemon.start()
            print(f"IPFS node (js-ipfs) running, pid {daemon.pid}; API {url}; repo {repo}")
            print(f"use it with: --store ipfs --ipfs-api {url}")
        elif args.command == "stop":
            was = daemon.pid
            daemon.stop()
            print(f"stopped (pid {was})" if was else "not running")
        else:
            pid = daemon.pid
            print(f"running (pid {pid}), API {daemon.live_api_url()}" if pid else "not running")
            return 0 if pid else 3
    except (StorageError, ConfigError) as exc:
        print(f"ipfs-node: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
