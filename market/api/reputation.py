"""Reputation API: a :class:`ReputationBook` rebuilt from chain events and round reports.

The book is a pure function of the chain (``ProjectCreated``, ``RoundFinalized`` and the
reports they point to), so the server keeps one, extends it as new blocks arrive, and a
restart rebuilds the same reputations. Reward tables are checked against the chain's
``rewardsRoot`` by the book itself.
"""

from __future__ import annotations

import threading
from typing import Any

from market.chain import ZERO32
from market.errors import MarketError
from market.reputation import ReputationBook, normalise_address

from .state import Services


class ReputationView:
    """The market's reputation book, caught up with the chain on each read.

    It is the same :class:`ReputationIndexer` (same MeritRank parameters, same stored log)
    that the aggregator's admission uses, so the page shows the reputations that decide.
    """

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._indexer: Any = None
        self._lock = threading.Lock()

    def sync(self) -> ReputationBook:
        """Index blocks not seen yet, then return the book."""
        from market.reputation.indexer import ReputationIndexer

        with self._lock:
            if self._indexer is None:
                self._indexer = ReputationIndexer(self.svc.market, self.svc.store, self.svc.db)
            self._indexer.sync()
            return self._indexer.book

    @property
    def skipped(self) -> list[str]:
        if self._indexer is None:
            return []
        return [str(s.get("reason", s)) for s in self._indexer.skipped]

    # -- views ----------------------------------------------------------------------------

    def of(self, address: str) -> dict[str, Any]:
        """An address's reputation as seen from every project's seeds."""
        book = self.sync()
        addr = normalise_address(address)
        per_project = {
            str(pid): round(book.reputation_of(addr, pid), 6) for pid in sorted(book.projects)
        }
        neighbours = []
        for src, dst, weight in book.graph.edges():
            if addr in (src, dst):
                neighbours.append({"from": src, "to": dst, "weight": weight})
        return {
            "address": addr,
            "in_graph": addr in book.graph,
            "per_project": per_project,
            "edges": neighbours,
        }

    def graph(self, limit: int = 50) -> dict[str, Any]:
        """Summary, edges, and the top ``limit`` reputations seen from each project."""
        book = self.sync()
        reputation = {
            str(pid): {
                a: round(v, 6)
                for a, v in sorted(book.reputation(pid).items(), key=lambda x: -x[1])[:limit]
            }
            for pid in sorted(book.projects)
        }
        return {
            "summary": book.summary(),
            "reputation": reputation,
            "edges": [{"from": s, "to": d, "weight": w} for s, d, w in book.graph.edges()],
            "skipped": self.skipped,
        }

    def admission(self, project_id: int, number: int) -> dict[str, Any]:
        """Who was admitted to a round (committers), the root, and their reputations."""
        book = self.sync()
        svc = self.svc
        r = svc.market.get_round(project_id, number)
        project = book.project(project_id)
        open_admission = r.admission_root == ZERO32
        rep = book.reputation(project_id)
        committers = sorted(
            {
                ev["args"]["trainer"]
                for ev in svc.market.events("UpdateCommitted", project_id=project_id, round=number)
            }
        )
        published: dict[str, Any] = {}
        if not open_admission:
            published = self._published(project_id, number)
        return {
            **published,
            "project_id": project_id,
            "round": number,
            "open": open_admission,
            "admission_root": "0x" + bytes(r.admission_root).hex(),
            "policy": project.policy.to_dict() if project.policy else {"policy": "open"},
            "admitted": [
                {"address": a, "reputation": round(rep.get(normalise_address(a), 0.0), 6)}
                for a in committers
            ],
            "reputation": {a: round(v, 6) for a, v in sorted(rep.items(), key=lambda x: -x[1])},
        }

    def _published(self, project_id: int, number: int) -> dict[str, Any]:
        """The round's admission document (admitted, refused and why), checked against the
        chain's root by :func:`market.reputation.commands.admission`."""
        from market.reputation.commands import admission

        try:
            doc = admission(self.svc.market, self.svc.store, self.svc.db, project_id, number)
        except MarketError as exc:
            return {"document_error": str(exc)}
        keys = ("cid", "newcomers", "refused", "dropped", "applications", "root_matches_chain")
        return {k: doc[k] for k in keys if k in doc} | {"decided": doc.get("admitted", [])}
