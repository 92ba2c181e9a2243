"""HTTP serving shared by the dashboard (``market.api``) and the aggregator service's API:
uvicorn in a daemon thread beside the caller's own loop, and one JSON error shape. It sits
below both packages so the aggregator does not import the dashboard."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi.responses import JSONResponse

from market.errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Serves ``app`` on ``host:port`` (a free loopback port by default) until ``stop()``."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "server",
        setting: str | None = None,
    ) -> None:
        """``name`` and ``setting`` (the option that picks the address) word the errors."""
        self.host, self.port, self.name, self.setting = host, port or free_port(), name, setting
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> ServerThread:
        """Bind here (a taken port is a ConfigError now, not a dead thread), then serve."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            hint = f" (change {self.setting})" if self.setting else ""
            raise ConfigError(
                f"the {self.name} cannot listen on {self.host}:{self.port}: {exc.strerror}{hint}"
            ) from None
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the {self.name} on {self.host}:{self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)


def error_response(status: int, exc: BaseException) -> JSONResponse:
    """The JSON error body both APIs answer with: ``{"error": message, "kind": name}``."""
    return JSONResponse({"error": str(exc), "kind": type(exc).__name__}, status_code=status)
