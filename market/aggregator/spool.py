"""A round's accepted updates spooled to scratch files and read back chunk by chunk.

Holding a round's updates in memory costs n·d bytes of int8 values (10 GB at n = 1000,
d = 10⁷), and stacking them into one batch used to double that. The aggregator instead
writes each accepted update once, as it is validated, into two raw files — int8 values and
float32 scales, one row per update, no header and nothing to unpickle (the shapes are
known) — and the streaming passes read (n, chunk) slices through ``np.memmap``. Memory is
then O(n·chunk) whatever d is; the page cache keeps what fits.

The scratch directories are named after the process that owns them, so one left behind by
a killed aggregator (SIGKILL, power loss: no cleanup runs) is removed by the next one.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from market.aggregator.rules import ChunkSource
from market.errors import AggregationError
from market.process import pid_alive
from market.storage import QuantizedUpdate

SCRATCH_PREFIX = "market-round-"
_OWNED = re.compile(re.escape(SCRATCH_PREFIX) + r"(\d+)-")


def sweep_stale_scratch(root: Path) -> None:
    """Remove the scratch directories under ``root`` whose owning process is gone.
    Directories of live processes (or of other users) are left alone."""
    for path in root.glob(SCRATCH_PREFIX + "*"):
        owner = _OWNED.match(path.name)
        if owner is not None and path.is_dir() and not pid_alive(int(owner.group(1))):
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def scratch_directory(root: Path | None = None) -> Iterator[Path]:
    """A fresh scratch directory owned by this process, removed on exit; dead processes'
    leftovers under the same root are swept first."""
    root = Path(root or tempfile.gettempdir())
    sweep_stale_scratch(root)
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=root) as d:
        yield Path(d)


class SpooledBatch(ChunkSource):
    """Updates of ``d`` parameters added one by one with :meth:`add`, then read as a
    :class:`ChunkSource` in the order they were added (the batch order)."""

    def __init__(self, directory: Path, d: int) -> None:
        self.d, self.n, self.block_size = d, 0, 0
        self._paths = (Path(directory) / "values.int8", Path(directory) / "scales.float32")
        self._files = [path.open("wb") for path in self._paths]
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, update: QuantizedUpdate) -> None:
        """Append one validated update (its shape and block size must match the others)."""
        if self._maps is not None:
            raise AggregationError("the spool is already being read; add updates before")
        self.block_size = self.block_size or update.block_size
        blocks = math.ceil(self.d / self.block_size)
        if (
            update.block_size != self.block_size
            or update.q.shape != (self.d,)
            or update.scales.shape != (blocks,)
        ):
            raise AggregationError(
                f"update {self.n} has {update.q.shape[0]} values in blocks of "
                f"{update.block_size}; the batch has {self.d} in blocks of {self.block_size}"
            )
        values, scales = self._files
        np.ascontiguousarray(update.q, dtype=np.int8).tofile(values)
        np.ascontiguousarray(update.scales, dtype=np.float32).tofile(scales)
        self.n += 1

    def _mapped(self) -> tuple[np.ndarray, np.ndarray]:
        if self._maps is None:
            if self.n == 0:
                raise AggregationError("a batch needs at least one update")
            for f in self._files:
                f.close()
            blocks = math.ceil(self.d / self.block_size)
            values, scales = self._paths
            self._maps = (
                np.memmap(values, dtype=np.int8, mode="r", shape=(self.n, self.d)),
                np.memmap(scales, dtype=np.float32, mode="r", shape=(self.n, blocks)),
            )
        return self._maps

    def read(self, start_block: int, stop_block: int) -> tuple[np.ndarray, np.ndarray]:
        q, s = self._mapped()
        b = self.block_size
        # Copies: the passes reshape and hand chunks to worker threads.
        return (
            np.array(q[:, start_block * b : stop_block * b]),
            np.array(s[:, start_block:stop_block]),
        )
