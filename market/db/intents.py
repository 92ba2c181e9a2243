"""Intent before every transaction, and crash points for the tests that prove it works.

:class:`TxGuard` writes (action, project, round, nonce) to the database before sending, and
the transaction's hash as soon as the node has accepted it, before the receipt is awaited
(``market.chain.client.on_sent``). On the next attempt — after a crash, a restart, a
timeout — it first waits for an earlier attempt still pending (looked up by its hash, or by
its nonce when the process died before the node answered), then asks the chain whether the
effect is already there. So an action is sent at most once per effect, whatever happened
to the process in between.

``MARKET_TEST_CRASH_AT=<point>`` makes the process SIGKILL itself at a named point (for
``<role>.<action>.sent``: right after the hash is recorded, before the receipt). Tests use
it; nothing else should set it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from market.chain.client import on_sent
from market.db.models import Intent
from market.db.session import Database
from market.errors import ChainError

CRASH_ENV = "MARKET_TEST_CRASH_AT"
T = TypeVar("T")


def crashpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup) if the crash test asked for this point."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class TxGuard:
    """Send each (action, project, round) of one account at most once per effect."""

    def __init__(
        self,
        db: Database,
        w3: Web3,
        contract: str,
        account: str,
        role: str,
        *,
        settle_timeout: float = 300.0,
        poll: float = 0.2,
        confirmations: int = 0,
    ) -> None:
        self.db, self.w3, self.contract, self.account, self.role = db, w3, contract, account, role
        self.settle_timeout, self.poll = settle_timeout, poll
        self.confirmations = confirmations

    def _row(self, s: Any, action: str, project_id: int, round_number: int) -> Intent | None:
        return s.scalar(
            select(Intent).where(
                Intent.contract == self.contract,
                Intent.account == self.account,
                Intent.action == action,
                Intent.project_id == project_id,
                Intent.round == round_number,
            )
        )

    def run(
        self,
        action: str,
        project_id: int,
        round_number: int,
        done: Callable[[], bool],
        send: Callable[[], T],
    ) -> T | None:
        """``send()`` unless ``done()`` (the chain shows the effect); None when skipped."""
        with self.db.session() as s:
            row = self._row(s, action, project_id, round_number)
            earlier = (row.nonce, row.status, row.tx_hash) if row is not None else None
        if earlier is not None and earlier[1] == "sending":
            self._settle(earlier[0], earlier[2], action)
        if done():
            self._mark(action, project_id, round_number, "done", None)
            return None
        nonce = self.w3.eth.get_transaction_count(self.account, "pending")
        with self.db.session() as s:
            row = self._row(s, action, project_id, round_number)
            if row is None:
                row = Intent(
                    contract=self.contract,
                    account=self.account,
                    action=action,
                    project_id=project_id,
                    round=round_number,
                    nonce=nonce,
                )
                s.add(row)
            row.nonce, row.status, row.tx_hash = nonce, "sending", None

        def sent(tx_hash: str, _nonce: int) -> None:
            self._mark(action, project_id, round_number, "sending", tx_hash)
            crashpoint(f"{self.role}.{action}.sent")

        try:
            with on_sent(sent):
                result = send()
        except BaseException:
            self._mark(action, project_id, round_number, "failed", None)
            raise
        tx_hash = _tx_hash_of(result)
        if tx_hash and self.confirmations:
            self._confirm(tx_hash, action)
        self._mark(action, project_id, round_number, "done", tx_hash)
        return result

    def _confirm(self, tx_hash: str, action: str) -> None:
        """Wait until ``confirmations`` blocks sit on the transaction's block; on the dev
        chain (which mines only on demand) mine them. Raises if a reorg dropped it."""
        from market.chain import DEV_CHAIN_ID, mine

        started = time.monotonic()
        while True:
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                receipt = None
            if receipt is None:
                raise ChainError(
                    f"the {action} transaction {tx_hash} left the chain (reorg) before "
                    f"{self.confirmations} confirmations: the service will check and resend"
                )
            depth = self.w3.eth.block_number - int(receipt["blockNumber"])
            if depth >= self.confirmations:
                return
            if self.w3.eth.chain_id == DEV_CHAIN_ID:
                mine(self.w3, self.confirmations - depth)
                continue
            if time.monotonic() - started > self.settle_timeout:
                raise ChainError(
                    f"{action} transaction {tx_hash} has {depth} of {self.confirmations} "
                    f"confirmations after {self.settle_timeout:g}s: is the chain producing blocks?"
                )
            time.sleep(self.poll)

    def _settle(self, nonce: int, tx_hash: str | None, action: str) -> None:
        """Wait while an earlier attempt's transaction is pending: found by its recorded hash,
        else (killed before the node answered) by ``nonce`` or an earlier one pending."""
        started = time.monotonic()
        while True:
            known = self._lookup(tx_hash) if tx_hash else None
            if known == "mined":
                return
            if known != "pending":  # no hash, or the node dropped it: go by the nonces
                mined = self.w3.eth.get_transaction_count(self.account, "latest")
                pending = self.w3.eth.get_transaction_count(self.account, "pending")
                if mined > nonce or pending <= mined:
                    return  # that nonce is mined, or nothing of ours is pending (never sent)
            if time.monotonic() - started > self.settle_timeout:
                raise ChainError(
                    f"the earlier {action} transaction {tx_hash or '(hash unknown)'} (nonce "
                    f"{nonce}) of {self.account} is still pending after "
                    f"{self.settle_timeout:g}s: raise its fee or wait; the service will not "
                    "send a second one meanwhile"
                )
            time.sleep(self.poll)

    def _lookup(self, tx_hash: str) -> str:
        """'mined', 'pending' (the node holds it) or 'unknown' (dropped, or never arrived)."""
        try:
            self.w3.eth.get_transaction_receipt(tx_hash)
            return "mined"
        except TransactionNotFound:
            pass
        try:
            self.w3.eth.get_transaction(tx_hash)
            return "pending"
        except TransactionNotFound:
            return "unknown"

    def _mark(
        self, action: str, project_id: int, round_number: int, status: str, tx: str | None
    ) -> None:
        with self.db.session() as s:
            row = self._row(s, action, project_id, round_number)
            if row is not None:
                row.status = status
                if tx:
                    row.tx_hash = tx


def _tx_hash_of(result: Any) -> str | None:
    """The transaction hash inside what a send returned (TxResult, (id, TxResult), outcome)."""
    if isinstance(result, tuple) and result:
        result = result[-1]
    inner = getattr(result, "finalize_tx", None)
    if inner is not None:
        result = inner
    tx_hash = getattr(result, "tx_hash", None)
    return tx_hash if isinstance(tx_hash, str) else None
