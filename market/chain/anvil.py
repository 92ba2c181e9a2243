"""A local anvil node the tool starts and always stops (no orphan processes).

Anvil runs in its own process group; :meth:`AnvilNode.stop` terminates the group, then
kills it, and an ``atexit`` hook stops every node still running when Python exits.
History pruning is on: without it anvil writes about 80 KB per block under ~/.foundry.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

from market.errors import ChainError, ConfigError

_PR_SET_PDEATHSIG = 1
# States anvil keeps in memory (see AnvilNode.start): enough for any request in flight.
KEPT_STATES = 256
_LISTENING = re.compile(r"Listening on (\S+):(\d+)")
_RUNNING: weakref.WeakSet[AnvilNode] = weakref.WeakSet()


def find_anvil() -> Path:
    """Locate the anvil binary: ``$MARKET_ANVIL``, then node_modules, then ``PATH``."""
    env = os.environ.get("MARKET_ANVIL")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(f"MARKET_ANVIL={env} is not an executable file")
        return path
    from market.chain.compile import repo_root

    try:
        roots = [repo_root(), Path.cwd()]
    except ConfigError:
        roots = [Path.cwd()]
    for root in roots:
        for rel in (
            "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
            "node_modules/.bin/anvil",
        ):
            candidate = root / rel
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ConfigError(
        "anvil not found: run `make install` (npm ci installs it into node_modules) "
        "or set MARKET_ANVIL to the binary's path"
    )


class AnvilNode:
    """A running anvil on 127.0.0.1 at a free port. Use as a context manager."""

    def __init__(self, process: subprocess.Popen, host: str, port: int, output: collections.deque):
        self.process = process
        self.host = host
        self.port = port
        self._output = output
        _RUNNING.add(self)

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls,
        *,
        block_time: float | None = None,
        chain_id: int | None = None,
        port: int = 0,
        timeout: float = 30.0,
        die_with_parent: bool = True,
    ) -> AnvilNode:
        """Start anvil and wait until it listens. ``block_time`` None means automine;
        ``chain_id`` None keeps anvil's 31337 (the only id dev keys work on); ``port`` 0 picks
        a free port.

        ``die_with_parent`` (Linux) has the kernel stop anvil if this process is killed
        without running its exit hooks (SIGKILL, a CI timeout). The kernel ties it to the
        *thread* that started the node: start long-lived nodes from the main thread, or
        pass False and rely on :meth:`stop` and the exit hook.
        """
        cmd = [
            str(find_anvil()),
            "--host",
            "127.0.0.1",
            "--port",
            str(int(port)),
            # History stays in memory only (unpruned, anvil writes ~80 KB per block to
            # ~/.foundry), but recent states are kept: with the bare flag only the latest
            # survives, and a request resolved at a block that another sender's transaction
            # has just superseded fails ("BlockOutOfRangeError: block height is 4 but
            # requested was 3", seen when two trainers committed at once).
            "--prune-history",
            str(KEPT_STATES),
        ]
        if chain_id is not None:
            cmd += ["--chain-id", str(int(chain_id))]
        if block_time is not None:
            if block_time <= 0:
                raise ConfigError(f"block_time must be positive, got {block_time}")
            cmd += ["--block-time", f"{block_time:g}"]
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() can signal all of it
            preexec_fn=_die_with_parent if die_with_parent else None,
            text=True,
            bufsize=1,
        )
        output: collections.deque[str] = collections.deque(maxlen=200)
        ready = threading.Event()
        found: list[tuple[str, int]] = []

        def drain() -> None:
            # Anvil logs every RPC call: keep reading so its pipe never fills and blocks it.
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line.rstrip("\n"))
                if not ready.is_set():
                    match = _LISTENING.search(line)
                    if match:
                        found.append((match.group(1), int(match.group(2))))
                        ready.set()
            ready.set()

        threading.Thread(target=drain, name=f"anvil-{process.pid}", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.05):
            if time.monotonic() > deadline:
                break
        if not found:
            _terminate(process)
            tail = "\n".join(output)
            raise ChainError(f"anvil did not start within {timeout:g}s; its output:\n{tail}")
        host, port = found[0]
        return cls(process, host, port, output)

    def output(self) -> str:
        """The last lines anvil printed (for error messages)."""
        return "\n".join(self._output)

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate anvil (then kill it if it lingers). Idempotent."""
        _terminate(self.process)
        _RUNNING.discard(self)

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"AnvilNode({self.rpc_url}, pid={self.pid}, {state})"


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when our parent goes away."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # best effort; stop() and the exit hook still apply


def _terminate(process: subprocess.Popen, grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue


@atexit.register
def _stop_all() -> None:
    for node in list(_RUNNING):
        node.stop()
