"""A trainer's side of the aggregator API (:mod:`market.aggregator.api`).

A trainer with its own database delivers its signed application over HTTP and fetches the
round's admission document from the aggregator. The API is a courier, not an authority: the
document is used only once it hashes to the CID the API named and its root equals the
round's on-chain ``admissionRoot`` (:func:`market.reputation.rounds.load_admission`); it is
then kept in the trainer's store and indexed in its database like a locally published one.
"""

from __future__ import annotations

from typing import Any

import requests

from market.chain import LearningMarket
from market.db import Database
from market.errors import MarketError, ReputationError
from market.reputation.application import Application
from market.reputation.rounds import index_admission, load_admission
from market.spec import canonical_json
from market.storage import Store
from market.storage.cid import cid_of, normalize_cid


class ApiUnavailable(MarketError):
    """The aggregator API did not answer (down, timeout, server error): try again later."""


class ApiRefused(ReputationError):
    """The aggregator API answered with a 4xx: its message says what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AggregatorApi:
    """HTTP client of one aggregator's API."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = requests.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ApiUnavailable(
                f"aggregator API at {self.url} unreachable ({exc.__class__.__name__})"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        if response.status_code >= 500:
            raise ApiUnavailable(
                f"aggregator API at {self.url} failed ({response.status_code}): "
                f"{body.get('error', body)}"
            )
        if response.status_code >= 400:
            raise ApiRefused(
                response.status_code,
                f"aggregator API refused ({response.status_code}): {body.get('error', body)}",
            )
        return body

    def apply(self, application: Application) -> dict[str, Any]:
        """Deliver a signed application (idempotent: posting it again changes nothing)."""
        path = f"/projects/{application.project_id}/rounds/{application.round}/applications"
        return self._request("POST", path, json=application.to_json())

    def admission(self, project_id: int, round_: int) -> dict[str, Any]:
        """The API's answer: ``cid``, ``root``, ``document`` — unchecked."""
        return self._request("GET", f"/projects/{project_id}/rounds/{round_}/admission")


def fetch_admission(
    api: AggregatorApi,
    market: LearningMarket,
    store: Store,
    db: Database,
    project_id: int,
    round_: int,
) -> str:
    """Fetch a gated round's admission document, check it against its CID and the chain,
    keep it in ``store``, index it in ``db``, and return its CID."""
    answer = api.admission(project_id, round_)
    cid, document = answer.get("cid"), answer.get("document")
    if not isinstance(cid, str) or not isinstance(document, dict):
        raise ReputationError(
            f"aggregator API gave no admission document for round {round_} of project "
            f"{project_id}: {answer}"
        )
    data = canonical_json(document)
    if cid_of(data) != normalize_cid(cid):
        raise ReputationError(
            f"the aggregator API's admission document for round {round_} of project "
            f"{project_id} does not hash to the CID it named ({cid}): not used"
        )
    store.put(data)
    admission, _ = load_admission(store, market, project_id, round_, cid=cid)  # root vs chain
    index_admission(db, market, project_id, round_, admission, cid)
    return cid
