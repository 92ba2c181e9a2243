"""Following a market's events across restarts: a cursor in the database, reorg detection.

A service reads events with the chain layer's :class:`EventIndexer`, handles them
(idempotently: every action is reconciled with the chain before it is sent), then saves
the cursor with the hash of the last block it read. On the next poll, a different hash at
that height — or a head below it — means the node was restarted or the chain reorganised
deeper than ``confirmations``: the service says so and re-reads from its start block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from market.chain import EventIndexer, LearningMarket
from market.db.models import ServiceCursor
from market.db.session import Database
from market.errors import ChainError

log = logging.getLogger("market.follow")


class ChainChanged(ChainError):
    """The chain under a service is not the one it followed (restart without state, new id)."""


class Follower:
    """Event cursor of one service on one market, persisted in ``db``."""

    def __init__(
        self,
        db: Database,
        market: LearningMarket,
        service: str,
        *,
        start_block: int = 0,
        chunk: int = 2_000,
        confirmations: int = 0,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.db, self.market, self.service = db, market, service
        self.start_block = start_block
        self.warn = warn or log.warning
        self.chain_id = market.w3.eth.chain_id
        self.genesis = "0x" + bytes(market.w3.eth.get_block(0)["hash"]).hex()
        cursor = self._cursor()
        if cursor is not None and cursor.chain_id != self.chain_id:
            raise ChainChanged(
                f"this database followed {market.address} on chain {cursor.chain_id}, but the node "
                f"reports chain {self.chain_id}: use another database (--db-url / --data-dir)"
            )
        if cursor is not None and cursor.genesis_hash not in (None, self.genesis):
            raise ChainChanged(
                "the node runs a new chain (genesis block "
                f"{self.genesis[:12]}…, this database followed {cursor.genesis_hash[:12]}…): the "
                "dev chain was restarted. Its projects and rounds are not the ones recorded "
                "here: start the service with a fresh database (--db-url / --data-dir)"
            )
        self.indexer = EventIndexer(
            market,
            start_block=cursor.next_block if cursor else start_block,
            chunk=chunk,
            confirmations=confirmations,
        )

    def _cursor(self) -> ServiceCursor | None:
        with self.db.session() as s:
            return s.scalar(
                select(ServiceCursor).where(
                    ServiceCursor.contract == self.market.address,
                    ServiceCursor.service == self.service,
                )
            )

    @property
    def next_block(self) -> int:
        return self.indexer.next_block

    def check_chain(self) -> None:
        """Raise if the contract is gone; rewind (with a warning) if history changed."""
        w3 = self.market.w3
        if not w3.eth.get_code(self.market.address):
            raise ChainChanged(
                f"no contract at {self.market.address} any more (head block "
                f"{w3.eth.block_number}): the node was restarted without its state. Redeploy, "
                "then run the service with the new --contract and a fresh database"
            )
        cursor = self._cursor()
        if cursor is None or cursor.last_block is None:
            return
        head = w3.eth.block_number
        seen = None if head < cursor.last_block else w3.eth.get_block(cursor.last_block)
        if seen is not None and "0x" + bytes(seen["hash"]).hex() == cursor.last_hash:
            return
        what = (
            f"the head is now {head}, below block {cursor.last_block} already read"
            if seen is None
            else f"block {cursor.last_block} changed hash"
        )
        self.warn(
            f"chain history changed under {self.service}: {what} (node restarted or a reorg "
            f"deeper than {self.indexer.confirmations} confirmations). Re-reading events from "
            f"block {self.start_block}; every action is checked against the chain, so nothing "
            "is sent twice"
        )
        self.indexer.next_block = self.start_block
        self._save(None, None)

    def poll(self) -> list[dict]:
        """New confirmed events in chain order (call :meth:`save` once they are handled)."""
        self.check_chain()
        return self.indexer.poll()

    def save(self) -> None:
        """Persist the cursor past the events returned by the last poll."""
        last = self.indexer.next_block - 1
        if last < 0:
            self._save(None, None)
            return
        block = self.market.w3.eth.get_block(last)
        self._save(last, "0x" + bytes(block["hash"]).hex())

    def _save(self, last_block: int | None, last_hash: str | None) -> None:
        with self.db.session() as s:
            row = s.scalar(
                select(ServiceCursor).where(
                    ServiceCursor.contract == self.market.address,
                    ServiceCursor.service == self.service,
                )
            )
            if row is None:
                row = ServiceCursor(
                    contract=self.market.address, service=self.service, chain_id=self.chain_id
                )
                s.add(row)
            row.next_block = self.indexer.next_block
            row.last_block, row.last_hash = last_block, last_hash
            row.genesis_hash = self.genesis
