"""Worker threads for the streaming passes, with results merged in column order.

NumPy's sorts and the float32 GEMMs release the GIL, so pieces of a pass (sub-chunks of
columns) can run side by side. Whatever a piece writes to its own columns it writes
directly; whatever adds up across pieces (the Gram matrix, sketches, per-update masses) is
handed back and added by the caller in submission order — the same additions in the same
order as one thread, so the bytes do not depend on the thread count.

``MARKET_AGGREGATION_THREADS`` sets the thread count (default: the machine's cores, at most
4); 1 runs every piece inline.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from market.errors import ConfigError

THREADS_ENV = "MARKET_AGGREGATION_THREADS"
MAX_DEFAULT_THREADS = 4
_POOLS: dict[int, ThreadPoolExecutor] = {}


def aggregation_threads() -> int:
    """Threads for the streaming passes (``MARKET_AGGREGATION_THREADS``, else the cores)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_THREADS))
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    return int(raw)


def _pool(threads: int) -> ThreadPoolExecutor:
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="aggregation")
    return _POOLS[threads]


class OrderedWork:
    """Runs pieces on the shared pool and passes their results to ``merge`` in submission
    order. At most two pieces per thread are in flight, so memory stays bounded however
    fast the source reads."""

    def __init__(self, merge: Callable[[Any], None], threads: int | None = None) -> None:
        self.merge = merge
        self.threads = threads or aggregation_threads()
        self._pending: deque[Future[Any]] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.threads == 1:
            self.merge(fn(*args))
            return
        self._pending.append(_pool(self.threads).submit(fn, *args))
        while len(self._pending) > 2 * self.threads:
            self.merge(self._pending.popleft().result())

    def drain(self) -> None:
        """Merge everything still in flight (re-raises a piece's exception)."""
        while self._pending:
            self.merge(self._pending.popleft().result())
