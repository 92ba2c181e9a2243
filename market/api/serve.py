"""``market serve``: run the dashboard with uvicorn (127.0.0.1 by default).

With ``dev_chain`` it first starts its own anvil, deploys LearningMarket and records it
under ``data_dir`` — one command for a local try-out. Dev keys are never offered to a
non-loopback listener: anyone reaching the port could spend them.
"""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

import uvicorn

from .app import create_app
from .settings import Settings

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    dev_chain: bool = False,
    on_ready: object = print,
) -> None:
    """Serve until interrupted; see the module docstring for ``dev_chain``."""
    if not is_loopback(host) and settings.dev_keys:
        settings = Settings(**{**settings.__dict__, "dev_keys": False})
        on_ready(f"listening on {host}: dev keys disabled (use a browser wallet)")
    if not dev_chain:
        on_ready(f"dashboard: http://{host}:{port}/ (chain {settings.rpc_url})")
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
        return
    from .devstack import DevStack

    data_dir = settings.data_dir
    scratch = None
    if data_dir == Path(".market"):
        scratch = tempfile.TemporaryDirectory(prefix="market-serve-")
        data_dir = Path(scratch.name)
    stack = DevStack.start(data_dir, serve=False)
    try:
        dev = stack.settings(
            store=settings.store, holdout=settings.holdout, dev_keys=settings.dev_keys
        )
        on_ready(f"dev chain {stack.node.rpc_url}, LearningMarket {stack.market.address}")
        on_ready(f"dashboard: http://{host}:{port}/ (data in {data_dir})")
        uvicorn.run(
            create_app(dev), host=host, port=port, log_level="warning", timeout_graceful_shutdown=3
        )
    finally:
        stack.stop()
        if scratch is not None:
            scratch.cleanup()
