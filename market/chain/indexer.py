"""Follow every event of a LearningMarket in chain order, resumably.

Services that keep their own view of the market (the database, the reputation book, the
dashboard) replay the contract's events rather than trust anyone's copy. The indexer reads
``eth_getLogs`` for the contract's address in bounded block ranges (public RPCs cap the
range), decodes each log with the ABI and returns them ordered by (block, log index), each
with its block's timestamp. Its cursor (``next_block``) is a plain int for the caller to
persist; ``confirmations`` keeps it that many blocks behind the head, away from reorgs.
"""

from __future__ import annotations

from market.chain.market import LearningMarket
from market.errors import ConfigError


class EventIndexer:
    """Cursor over a market's events; call :meth:`poll` repeatedly."""

    def __init__(
        self,
        market: LearningMarket,
        *,
        start_block: int = 0,
        chunk: int = 2_000,
        confirmations: int = 0,
    ) -> None:
        if chunk < 1:
            raise ConfigError(f"chunk must be at least 1 block, got {chunk}")
        if confirmations < 0:
            raise ConfigError(f"confirmations cannot be negative, got {confirmations}")
        self.market = market
        self.next_block = int(start_block)
        self.chunk = int(chunk)
        self.confirmations = int(confirmations)
        self._timestamps: dict[int, int] = {}

    def head(self) -> int:
        """The last block this indexer will read now."""
        return self.market.w3.eth.block_number - self.confirmations

    def poll(self, max_blocks: int | None = None) -> list[dict]:
        """Events from ``next_block`` up to the head (at most ``max_blocks`` blocks), in
        chain order; advances the cursor past what it returned."""
        head = self.head()
        if max_blocks is not None:
            head = min(head, self.next_block + max_blocks - 1)
        events: list[dict] = []
        while self.next_block <= head:
            to_block = min(head, self.next_block + self.chunk - 1)
            logs = self.market.w3.eth.get_logs(
                {
                    "address": self.market.address,
                    "fromBlock": self.next_block,
                    "toBlock": to_block,
                }
            )
            batch = self.market.decode_logs(logs)
            for ev in batch:
                ev["timestamp"] = self._timestamp(ev["block_number"])
            events.extend(batch)
            self.next_block = to_block + 1
        events.sort(key=lambda ev: (ev["block_number"], ev["log_index"]))
        return events

    def _timestamp(self, block_number: int) -> int:
        if block_number not in self._timestamps:
            if len(self._timestamps) > 10_000:
                self._timestamps.clear()
            block = self.market.w3.eth.get_block(block_number)
            self._timestamps[block_number] = int(block["timestamp"])
        return self._timestamps[block_number]
