"""The aggregator's HTTP API: how a trainer with its own database reaches gated rounds.

``market aggregator run`` serves it when ``api_listen`` is set (off by default):

- ``POST /projects/{id}/rounds/{n}/applications`` takes an EIP-712 signed application
  (:meth:`Application.to_json`). It must name this chain, market, project and round, be
  signed by the trainer it names, and come inside the window: the project is served here
  and gated, and round ``n`` is the next one, not opened yet (the admitted list is decided
  when it opens). It is stored where the admission step reads it, so posting again is
  harmless (``already: true``).
- ``GET /projects/{id}/rounds/{n}/admission`` returns the round's admission document and
  its CID. A trainer trusts none of it: it checks the CID against the document and the
  document's root against the round's on-chain ``admissionRoot``.
- ``GET /health``.

Errors are JSON ``{"error", "kind"}`` like the dashboard's: 400 malformed or aimed at
another round, 403 a signature that is not the named trainer's, 404 unknown project or
round or nothing published, 409 outside the window or open admission, 503 chain down.
"""

from __future__ import annotations

from typing import Annotated, Any

import requests
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from market.chain import ZERO32, LearningMarket
from market.db import Database
from market.errors import ChainError, MarketError, ReputationError
from market.reputation.application import Application, verify_application
from market.reputation.commands import project_policy
from market.reputation.rounds import (
    load_admission,
    published_cid,
    record_application,
    stored_application,
)
from market.serving import error_response
from market.storage import Store


class Refused(MarketError):
    """A request the API turns down, with the HTTP status saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_api(
    market: LearningMarket,
    store: Store,
    db: Database,
    aggregator: str,
    projects: list[int] | None = None,
) -> FastAPI:
    """The API of the aggregator ``aggregator`` serving ``projects`` (None: all naming it)."""
    app = FastAPI(title="learning-market aggregator", docs_url="/docs", redoc_url=None)
    chain_id = int(market.w3.eth.chain_id)
    gated: dict[int, bool] = {}  # a project's spec never changes

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return error_response(exc.status, exc)

    @app.exception_handler(RequestValidationError)
    async def malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, exc)

    @app.exception_handler(MarketError)
    async def market_error(_: Request, exc: MarketError) -> JSONResponse:
        return error_response(503 if isinstance(exc, ChainError) else 400, exc)

    @app.exception_handler(requests.exceptions.ConnectionError)
    async def chain_down(_: Request, exc: Exception) -> JSONResponse:
        return error_response(503, ChainError(f"the aggregator cannot reach its chain: {exc}"))

    def served_project(project_id: int):  # noqa: ANN202
        if not 1 <= project_id <= market.project_count():
            raise Refused(404, f"no project {project_id} on market {market.address}")
        project = market.get_project(project_id)
        if project.aggregator != aggregator or (
            projects is not None and project_id not in projects
        ):
            raise Refused(404, f"project {project_id} is not served by aggregator {aggregator}")
        if project_id not in gated:
            gated[project_id] = project_policy(market, store, project_id) is not None
        return project

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "ok": True,
            "aggregator": aggregator,
            "contract": market.address,
            "chain_id": chain_id,
            "block": market.w3.eth.block_number,
        }

    @app.post("/projects/{project_id}/rounds/{number}/applications")
    def apply(
        project_id: int, number: int, doc: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        application = Application.from_json(doc)  # ReputationError → 400
        where = (application.project_id, application.round)
        if where != (project_id, number):
            raise Refused(
                400,
                f"the application is for project {where[0]} round {where[1]} but was posted "
                f"to project {project_id} round {number}",
            )
        if (application.chain_id, application.market) != (chain_id, market.address):
            raise Refused(
                400,
                f"the application names chain {application.chain_id} market "
                f"{application.market}; this aggregator serves chain {chain_id} market "
                f"{market.address}",
            )
        try:
            trainer = verify_application(application)
        except ReputationError as exc:
            raise Refused(403, str(exc)) from None
        project = served_project(project_id)
        if not gated[project_id]:
            raise Refused(409, f"project {project_id} has open admission: commit without applying")
        following = project.rounds_opened + 1
        if number < following:
            raise Refused(
                409,
                f"applications to round {number} of project {project_id} closed when it "
                "opened: its admitted list is fixed",
            )
        if project.cancelled or number > project.rounds:
            raise Refused(409, f"project {project_id} will not open a round {number}")
        if number != following:
            raise Refused(
                409,
                f"round {number} of project {project_id} takes no applications yet: only "
                f"round {following}, the next to open, does",
            )
        known = stored_application(db, market, project_id, number, trainer)
        already = known is not None and known.signature == "0x" + application.signature.hex()
        record_application(db, application)
        return {
            "trainer": trainer,
            "project_id": project_id,
            "round": number,
            "recorded": True,
            "already": already,
        }

    @app.get("/projects/{project_id}/rounds/{number}/admission")
    def admission(project_id: int, number: int) -> dict[str, Any]:
        project = served_project(project_id)
        if not 1 <= number <= project.rounds_opened:
            raise Refused(
                404,
                f"round {number} of project {project_id} is not open yet: its admission is "
                "decided when it opens",
            )
        root = bytes(market.get_round(project_id, number).admission_root)
        out: dict[str, Any] = {
            "project_id": project_id,
            "round": number,
            "root": "0x" + root.hex(),
            "open": root == ZERO32,
            "cid": None,
            "document": None,
        }
        if root == ZERO32:
            return out
        try:
            cid = published_cid(db, market, project_id, number)
            _, document = load_admission(store, market, project_id, number, cid=cid)
        except ReputationError as exc:
            raise Refused(404, str(exc)) from None
        return out | {"cid": cid, "document": document}

    return app
