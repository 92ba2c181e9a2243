"""The FastAPI app: dashboard API, reputation API, live events, health, and the page itself.

All routes are under ``/api``; the page (``web/``) is served at ``/``. Errors are JSON
``{"error": message, "kind": name}`` with a status that says whose fault it is: 400 bad
input, 404 unknown project/round/blob, 409 a contract revert (named after the broken
rule), 503 the chain or store is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import requests
from fastapi import Body, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from market.aggregator.rules import catalogue
from market.chain import ContractRevert, chain_time
from market.errors import ChainError, ConfigError, MarketError, ReputationError, StorageError
from market.serving import error_response

from . import actions, views
from .reputation import ReputationView
from .settings import Settings
from .state import Services
from .verify import verify_round

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
MAX_DOWNLOAD = 256 * 1024 * 1024
CID_RE = re.compile(r"^[A-Za-z0-9]{10,100}$")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The dashboard app for one chain, market contract and store (see :class:`Settings`)."""
    settings = settings or Settings()
    svc = Services(settings)
    txlog = actions.TxLog()
    reputation = ReputationView(svc)
    app = FastAPI(title="learning-market dashboard", docs_url="/api/docs", redoc_url=None)
    app.state.services, app.state.txlog, app.state.reputation = svc, txlog, reputation

    @app.exception_handler(LookupError)
    async def not_found(_: Request, exc: LookupError) -> JSONResponse:
        return error_response(404, exc)

    @app.exception_handler(MarketError)
    async def market_error(_: Request, exc: MarketError) -> JSONResponse:
        if isinstance(exc, ContractRevert):
            return JSONResponse(
                {"error": str(exc), "kind": "ContractRevert", "revert": exc.error_name},
                status_code=409,
            )
        if isinstance(exc, ConfigError | ReputationError):
            return error_response(400, exc)
        if isinstance(exc, StorageError):
            return error_response(404, exc)
        if isinstance(exc, ChainError):
            return error_response(503, exc)
        return error_response(400, exc)

    @app.exception_handler(requests.exceptions.ConnectionError)
    async def chain_down(_: Request, exc: Exception) -> JSONResponse:
        return error_response(503, ChainError(f"chain unreachable at {settings.rpc_url}: {exc}"))

    # -- health and accounts ----------------------------------------------------------

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        try:
            block = svc.w3.eth.block_number
            contract = svc.market.address
        except MarketError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - an unreachable RPC must not 500 the probe
            return {"ok": False, "error": f"chain unreachable at {settings.rpc_url}: {exc}"}
        return {
            "ok": True,
            "chain_id": svc.chain_id,
            "block": block,
            "chain_time": chain_time(svc.w3),
            "contract": contract,
            "store": settings.store,
            "dev_chain": svc.dev_chain,
            "dev_keys": settings.dev_keys and svc.dev_chain,
            "holdout": settings.holdout,
        }

    @app.get("/api/accounts")
    def accounts() -> list[dict[str, Any]]:
        roles = {0: "deployer", 1: "owner", 2: "aggregator"}
        return [
            {
                "index": i,
                "address": a.address,
                "role": roles.get(i, "trainer"),
                "balance_wei": str(svc.w3.eth.get_balance(a.address)),
            }
            for i, a in enumerate(svc.dev_accounts())
        ]

    # -- projects and rounds ----------------------------------------------------------

    @app.get("/api/rules")
    def rules() -> list[dict[str, Any]]:
        return catalogue()

    @app.get("/api/projects")
    def projects() -> list[dict[str, Any]]:
        return views.list_projects(svc)

    @app.get("/api/projects/{project_id}")
    def project(project_id: int) -> dict[str, Any]:
        return views.project_detail(svc, project_id)

    @app.get("/api/projects/{project_id}/rounds/{number}")
    def round_(project_id: int, number: int) -> dict[str, Any]:
        return views.round_detail(svc, project_id, number)

    @app.get("/api/projects/{project_id}/rounds/{number}/similarity")
    def similarity(project_id: int, number: int) -> dict[str, Any]:
        return views.similarity(svc, project_id, number)

    @app.api_route("/api/projects/{project_id}/rounds/{number}/verify", methods=["GET", "POST"])
    def verify(project_id: int, number: int) -> dict[str, Any]:
        return verify_round(svc, project_id, number)

    @app.post("/api/specs")
    def publish_spec(req: actions.SpecRequest) -> dict[str, Any]:
        return actions.publish_spec(svc, req)

    @app.post("/api/projects")
    def create_project(req: actions.ProjectRequest) -> dict[str, Any]:
        return actions.create_project(svc, txlog, req)

    @app.post("/api/projects/{project_id}/{action}")
    def owner_action(project_id: int, action: str, account: str = Body(embed=True)) -> dict:
        names = {"cancel": "cancelProject", "refund": "refund"}
        if action not in names:
            raise LookupError(f"unknown owner action {action!r}: use cancel or refund")
        return actions.owner_tx(svc, txlog, names[action], account, project_id)

    @app.post("/api/projects/prepare")
    def prepare_project(req: actions.ProjectRequest) -> dict[str, Any]:
        """Unsigned createProject for a browser wallet; the wallet signs and sends it."""
        return actions.prepare_create(svc, req)

    @app.get("/api/txs")
    def txs() -> list[dict[str, Any]]:
        return txlog.entries

    @app.get("/api/blobs/{cid}")
    def blob(cid: str, name: str | None = None) -> Response:
        if not CID_RE.match(cid):
            raise ConfigError(f"{cid!r} is not a CID")
        data = svc.store.get(cid, max_size=MAX_DOWNLOAD)
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", name or cid)
        media = "application/json" if data[:1] == b"{" else "application/octet-stream"
        return Response(
            data,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    # -- reputation -------------------------------------------------------------------

    @app.get("/api/reputation/{address}")
    def reputation_of(address: str) -> dict[str, Any]:
        return reputation.of(address)

    @app.get("/api/projects/{project_id}/admission/{number}")
    def admission(project_id: int, number: int) -> dict[str, Any]:
        views.get_project(svc, project_id)
        return reputation.admission(project_id, number)

    @app.get("/api/graph")
    def graph() -> dict[str, Any]:
        return reputation.graph()

    # -- live updates -----------------------------------------------------------------

    @app.get("/api/events")
    async def events(request: Request, limit: int = 0) -> StreamingResponse:
        """Server-sent events: one ``block`` message per new block, with its market events."""

        async def stream() -> AsyncIterator[str]:
            sent = 0
            last = -1
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                try:
                    message = await run_in_threadpool(_poll, svc, last)
                except Exception as exc:  # noqa: BLE001 - report, keep the stream alive
                    message = {"error": str(exc)}
                if message is not None:
                    last = message.get("block", last)
                    yield f"event: block\ndata: {json.dumps(message)}\n\n"
                    sent += 1
                    if limit and sent >= limit:
                        return
                await asyncio.sleep(settings.poll_seconds)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- the page ---------------------------------------------------------------------

    web = settings.web_dir or WEB_DIR
    if web.is_dir():
        app.mount("/static", StaticFiles(directory=web), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(web / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def _poll(svc: Services, last: int) -> dict[str, Any] | None:
    """The new head and the market's events since ``last``, or None when nothing moved."""
    head = svc.w3.eth.block_number
    if head == last:
        return None
    if last < 0:  # the subscription starts here: the page has just read everything
        return {"block": head, "chain_time": chain_time(svc.w3), "events": []}
    logs = svc.w3.eth.get_logs(
        {"address": svc.market.address, "fromBlock": last + 1, "toBlock": head}
    )
    happened = [
        {
            "event": ev["event"],
            "project_id": ev["args"].get("project_id"),
            "round": ev["args"].get("round"),
        }
        for ev in svc.market.decode_logs(logs)
    ]
    return {"block": head, "chain_time": chain_time(svc.w3), "events": happened}
