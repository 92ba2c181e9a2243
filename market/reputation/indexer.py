"""The reputation book, fed from the chain: ``ProjectCreated`` and ``RoundFinalized`` events.

For each finalized round that paid anything, the round report is fetched from the store by
the on-chain ``reportDigest`` and its reward table goes into the book together with the
chain's ``rewardsRoot`` (the book refuses a table that does not hash to it). A project's
admission policy comes from its spec (fetched by ``specDigest``).

Restarts: the book's input log is stored (``market/db/reputation.py``) with the block and
block hash each entry came from, and the cursor with the hash of the last block read. On
start the log is replayed (walks come out bit-identical). On each :meth:`sync`, a different
hash at the cursor's block — or a head below it — means a reorg (or a node restarted
without its state): the newest log entry whose block still has the same hash is the fork
point; entries after it are dropped, the book is rebuilt from the rest and reading resumes
after the fork point (from scratch when no entry survives).

A report that cannot be read or does not match the chain is skipped, with the reason kept
in the log (``kind: "skip"``) and in :attr:`ReputationIndexer.skipped`: the round adds no
feedback, for every reader with the same store alike.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from market.chain import EventIndexer, LearningMarket
from market.db import Database
from market.db.reputation import ReputationCursor, ReputationLogEntry, ensure_tables
from market.errors import MarketError, ReputationError
from market.reputation.admission import policy_from_spec
from market.reputation.service import ReputationBook, epoch_of
from market.storage import Store

log = logging.getLogger("market.reputation")

SPEC_MAX_BYTES = 1024 * 1024
REPORT_MAX_BYTES = 64 * 1024 * 1024
BOOK_DEFAULTS: dict[str, Any] = {
    "alpha": 0.2,
    "beta": 0.5,
    "gamma": 0.0,
    "seed": 0,
    "walks_per_seed": 10_000,
}


@dataclass(frozen=True)
class SyncResult:
    """What one :meth:`ReputationIndexer.sync` did."""

    events: int  # ProjectCreated / RoundFinalized events handled
    entries: int  # log entries added (projects, reward tables, skips)
    next_block: int
    rolled_back_to: int | None  # fork point after a reorg (-1: rebuilt from scratch)


def _hex(block: Any) -> str:
    return "0x" + bytes(block["hash"]).hex()


class ReputationIndexer:
    """A :class:`ReputationBook` kept in step with one market contract; see module docstring.

    ``book_options`` (alpha, beta, gamma, seed, walks_per_seed) fix the MeritRank
    parameters: everyone who must re-derive an admission list uses the same ones.
    """

    def __init__(
        self,
        market: LearningMarket,
        store: Store,
        db: Database,
        *,
        start_block: int = 0,
        chunk: int = 2_000,
        confirmations: int = 0,
        book_options: dict[str, Any] | None = None,
    ) -> None:
        self.market, self.store, self.db = market, store, db
        self.start_block = int(start_block)
        self.chain_id = int(market.w3.eth.chain_id)
        self.book_options = {**BOOK_DEFAULTS, **(book_options or {})}
        ensure_tables(db.engine)
        self.book = ReputationBook(**self.book_options)
        self.skipped: list[dict[str, Any]] = []
        self.events = EventIndexer(
            market, start_block=self.start_block, chunk=chunk, confirmations=confirmations
        )
        self.last_block: int | None = None
        self.last_hash: str | None = None
        self._reload()

    # ------------------------------------------------------------------ persistence
    def _where(self, model: Any) -> tuple:
        return (model.contract == self.market.address, model.chain_id == self.chain_id)

    def _stored_entries(self) -> list[ReputationLogEntry]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(ReputationLogEntry)
                    .where(*self._where(ReputationLogEntry))
                    .order_by(ReputationLogEntry.seq)
                )
            )

    def _reload(self) -> None:
        """Rebuild the book and cursor from the database (start, failed sync, rollback)."""
        with self.db.session() as s:
            cursor = s.scalar(select(ReputationCursor).where(*self._where(ReputationCursor)))
        rows = self._stored_entries()
        self.book = ReputationBook(**self.book_options)
        entries = [json.loads(r.entry_json) for r in rows]
        self.book.replay(e for e in entries if e.get("kind") != "skip")
        self.skipped = [e for e in entries if e.get("kind") == "skip"]
        self._seq = rows[-1].seq + 1 if rows else 0
        if cursor is None:
            self.events.next_block = self.start_block
            self.last_block = self.last_hash = None
        else:
            self.events.next_block = int(cursor.next_block)
            self.last_block, self.last_hash = cursor.last_block, cursor.last_hash

    def _save(self, entries: list[tuple[int, str, dict]], next_block: int, last: int, h: str):
        with self.db.session() as s:
            for block_number, block_hash, entry in entries:
                s.add(
                    ReputationLogEntry(
                        contract=self.market.address,
                        chain_id=self.chain_id,
                        seq=self._seq,
                        block_number=block_number,
                        block_hash=block_hash,
                        entry_json=json.dumps(entry, sort_keys=True),
                    )
                )
                self._seq += 1
            self._set_cursor(s, next_block, last, h)

    def _set_cursor(self, s: Any, next_block: int, last: int | None, h: str | None) -> None:
        row = s.scalar(select(ReputationCursor).where(*self._where(ReputationCursor)))
        if row is None:
            row = ReputationCursor(contract=self.market.address, chain_id=self.chain_id)
            s.add(row)
        row.next_block, row.last_block, row.last_hash = next_block, last, h

    # ------------------------------------------------------------------------ reorgs
    def _block_hash(self, number: int) -> str | None:
        w3 = self.market.w3
        if number > w3.eth.block_number:
            return None
        return _hex(w3.eth.get_block(number))

    def _check_reorg(self) -> int | None:
        """Roll back to the fork point if the chain changed under us; the fork block or -1."""
        if self.last_block is None or self._block_hash(self.last_block) == self.last_hash:
            return None
        fork, fork_hash = -1, None
        seen: set[int] = set()
        for row in reversed(self._stored_entries()):
            if row.block_number in seen:
                continue
            seen.add(row.block_number)
            if self._block_hash(row.block_number) == row.block_hash:
                fork, fork_hash = row.block_number, row.block_hash
                break
        with self.db.session() as s:
            s.execute(
                delete(ReputationLogEntry).where(
                    *self._where(ReputationLogEntry), ReputationLogEntry.block_number > fork
                )
            )
            if fork < 0:
                self._set_cursor(s, self.start_block, None, None)
            else:
                self._set_cursor(s, fork + 1, fork, fork_hash)
        log.warning(
            "chain changed under the reputation index (block %s no longer has hash %s): %s",
            self.last_block,
            self.last_hash,
            f"rolled back to block {fork}" if fork >= 0 else "rebuilding from scratch",
        )
        self._reload()
        return fork

    # -------------------------------------------------------------------------- sync
    def sync(self, to_block: int | None = None) -> SyncResult:
        """Read new events up to the head (minus confirmations), or up to ``to_block``, into
        the book and the log."""
        for attempt in (1, 2):
            try:
                return self._sync_once(to_block)
            except IntegrityError:  # another process indexed the same blocks first
                self._reload()
                if attempt == 2:
                    raise
            except BaseException:
                self._reload()  # the book must never run ahead of what is stored
                raise
        raise AssertionError("unreachable")

    def _sync_once(self, to_block: int | None) -> SyncResult:
        rolled_back = self._check_reorg()
        w3 = self.market.w3
        target = self.events.head() if to_block is None else min(self.events.head(), to_block)
        start = self.events.next_block
        if target < start:
            return SyncResult(0, 0, start, rolled_back)
        target_hash = _hex(w3.eth.get_block(target))
        raw = self.events.poll(max_blocks=target - start + 1)
        wanted = [e for e in raw if e["event"] in ("ProjectCreated", "RoundFinalized")]
        hashes: dict[int, str] = {}
        entries: list[tuple[int, str, dict]] = []
        for ev in wanted:
            number = ev["block_number"]
            if number not in hashes:
                hashes[number] = _hex(w3.eth.get_block(number))
            for entry in self._handle(ev):
                entries.append((number, hashes[number], entry))
        if _hex(w3.eth.get_block(target)) != target_hash:  # reorg while reading: retry later
            self._reload()
            return SyncResult(0, 0, self.events.next_block, rolled_back)
        self._save(entries, target + 1, target, target_hash)
        self.last_block, self.last_hash = target, target_hash
        self.skipped.extend(e for _, _, e in entries if e.get("kind") == "skip")
        return SyncResult(len(wanted), len(entries), target + 1, rolled_back)

    def _handle(self, ev: dict[str, Any]) -> list[dict[str, Any]]:
        args = ev["args"]
        pid = int(args["project_id"])
        before = len(self.book.log)
        if ev["event"] == "ProjectCreated":
            policy, skip = None, None
            try:
                policy = policy_from_spec(self._spec(args["spec_digest"]).admission)
            except MarketError as exc:
                skip = {"kind": "skip", "project_id": pid, "reason": f"spec unreadable: {exc}"}
            self.book.add_project(pid, args["owner"], policy)
            return [*self.book.log[before:], *([skip] if skip else [])]
        number = int(args["round"])
        if int(args["total"]) == 0:
            return []  # nobody was paid: no feedback
        try:
            rewards = self._rewards(args["report_digest"], pid, number)
            self.book.record_rewards(
                pid, number, rewards, epoch_of(ev["timestamp"]), rewards_root=args["rewards_root"]
            )
        except MarketError as exc:
            return [{"kind": "skip", "project_id": pid, "round": number, "reason": str(exc)}]
        return self.book.log[before:]

    def _spec(self, digest: bytes):  # noqa: ANN202
        from market.spec import ProjectSpec
        from market.storage.resolve import get_by_digest

        _, data = get_by_digest(self.store, digest, max_size=SPEC_MAX_BYTES)
        return ProjectSpec.from_bytes(data)

    def _rewards(self, digest: bytes, pid: int, number: int) -> dict[str, int]:
        from market.aggregator.report import RoundReport
        from market.storage.resolve import get_by_digest

        _, data = get_by_digest(self.store, digest, max_size=REPORT_MAX_BYTES)
        report = RoundReport.from_bytes(data)
        if (report.project_id, report.round) != (pid, number):
            raise ReputationError(
                f"report 0x{bytes(digest).hex()} is for project {report.project_id} round "
                f"{report.round}, not project {pid} round {number}"
            )
        return dict(report.rewards())

    # ------------------------------------------------------------------------ views
    @property
    def next_block(self) -> int:
        return self.events.next_block

    def log_entries(self) -> list[dict[str, Any]]:
        """The stored input log (including skips), oldest first."""
        return [json.loads(r.entry_json) for r in self._stored_entries()]
