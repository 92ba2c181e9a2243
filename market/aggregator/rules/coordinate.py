"""Coordinate-wise median and trimmed mean, streamed over column chunks.

Both need the columns, not the Gram matrix, so they run chunk by chunk (optionally inside
the Gram pass, see :mod:`market.aggregator.engine`). Convention (ByzFL's ``Median`` and
``TrMean(f)``): the median of an even count is the mean of the two middle values; the
trimmed mean drops the f smallest and f largest values per coordinate and averages the
n − 2f left. Both are unweighted (sample counts are self-reported).

Speed: each sub-chunk is sorted once, by 32-bit keys (:class:`ColumnOrder`) — an int32
sort is 2.3× faster than sorting the exact float64 values. A key is the value rounded to
float32 and truncated, so it orders the values exactly except among equal truncated keys;
a cut of the sorted order that falls between two equal keys is *uncertain*, and only those
coordinates are re-sorted exactly (rare: real updates almost never put two values within
2⁻¹⁶ relative at a cut — for n ≤ 128; each doubling of n takes one bit — but identical
copies and exact zeros do).

Determinism: the trimmed mean keeps the values at sorted positions f … n−f−1 (equal values
ordered by update index) and adds them *in update order*, one at a time, like every other
aggregate (acc += u_i over i); the median averages two exact values. The bytes depend on
neither the sort algorithm nor the machine.

Coefficients are *effective* weights (``linear=False``): the share of coordinates on which
each update's value was kept, divided by the number kept — Σ c_i = 1, and c_i = 0 means the
update never entered the aggregate. A value equal to the one at a cut is kept "in part":
the kept copies of a repeated value share its mass equally. Flags: updates kept on less
than ``flag_below`` times the average share (off by default for the median, which keeps one
value per coordinate).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from market.aggregator.rules.base import (
    AggregationResult,
    ChunkSource,
    Rule,
    check_inputs,
)
from market.aggregator.rules.coordinate_kernels import (
    kept_sums,
    masked_sum,
    median_picks,
    order_keys,
    trimmed_bounds,
)
from market.aggregator.rules.gram_rule import resolve_f, shared_pass
from market.aggregator.rules.parallel import OrderedWork
from market.errors import AggregationError

# Values per sub-chunk: 4 MB of keys per worker; smaller pieces spend more of their time
# in Python (measured: 2¹⁸ values per piece took 25 % longer with two threads).
# (It also fixes how the per-update mass is summed, so it is part of the output's bytes.)
SUB_VALUES = 1 << 20
# Columns transposed at a time (see _Buffers.transposed).
TRANSPOSE_COLUMNS = 1024
# Update indices live in the keys' low bits; the rest of the 32 bits order the values.
MAX_UPDATES = 1 << 22


class ColumnOrder:
    """One sub-chunk's coordinates, each ordered across updates: ``keys[j]`` is coordinate
    j's n sort keys (see :mod:`~market.aggregator.rules.coordinate_kernels`), sorted.
    Its arrays are the thread's scratch buffers: valid until the thread's next order."""

    def __init__(self, q: np.ndarray, s: np.ndarray, block_size: int) -> None:
        """``q`` (n, c) int8 and ``s`` (n, blocks) float32: a sub-chunk starting on a block
        boundary (value = s·q)."""
        n, c = q.shape
        if n > MAX_UPDATES:
            raise AggregationError(f"coordinate rules take at most {MAX_UPDATES} updates")
        buffers = _Buffers.of_thread()
        self.q, self.s, self.block_size = q, s, block_size
        self.bits = max(1, (n - 1).bit_length())
        self.qt = buffers.transposed(q)
        self.keys = buffers.keys(c, n)
        order_keys(self.qt, np.ascontiguousarray(s.T), block_size, self.bits, self.keys)
        self.keys.sort(axis=1)

    @property
    def n(self) -> int:
        return self.q.shape[0]

    def exact(self, coords: np.ndarray) -> np.ndarray:
        """Exact values (len, n) of the selected coordinates (a boolean mask), update order."""
        cols = np.flatnonzero(coords)
        return self.qt[cols] * self.s.T[cols // self.block_size].astype(np.float64)


class _Buffers:
    """A worker thread's scratch arrays, kept across calls: fresh multi-megabyte arrays
    per sub-chunk cost page faults (measured: 0.13 s instead of 0.11 s per trimmed mean
    in a process whose allocator had handed large blocks back to the OS)."""

    _local = threading.local()

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    @classmethod
    def of_thread(cls) -> _Buffers:
        if not hasattr(cls._local, "buffers"):
            cls._local.buffers = cls()
        return cls._local.buffers

    def _array(self, name: str, shape: tuple[int, int], dtype: type) -> np.ndarray:
        size = shape[0] * shape[1]
        held = self._arrays.get(name)
        if held is None or held.size < size:
            held = self._arrays[name] = np.empty(size, dtype=dtype)
        return held[:size].reshape(shape)

    def transposed(self, q: np.ndarray) -> np.ndarray:
        """``q.T`` as a C-contiguous (c, n) copy."""
        n, c = q.shape
        out = self._array("transposed", (c, n), np.int8)
        # Transpose from a compact copy of TRANSPOSE_COLUMNS columns whose row stride is not
        # a power of two: a power-of-two stride maps the column reads onto a few cache sets
        # (measured 5× slower), and rows further apart than that miss the TLB (15 %).
        padded = self._array("padded", (n, TRANSPOSE_COLUMNS + 64), np.int8)
        for start in range(0, c, TRANSPOSE_COLUMNS):
            piece = padded[:, : min(TRANSPOSE_COLUMNS, c - start)]
            piece[...] = q[:, start : start + piece.shape[1]]
            out[start : start + piece.shape[1]] = piece.T
        return out

    def keys(self, c: int, n: int) -> np.ndarray:
        return self._array("keys", (c, n), np.int32)


def trimmed_chunk(order: ColumnOrder, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed mean of every coordinate of a sub-chunk and each update's kept mass."""
    keep = order.n - 2 * f
    lo, hi, uncertain = trimmed_bounds(order.keys, order.bits, f)
    acc, counts = masked_sum(order.q, order.s, order.block_size, lo, hi)
    share = counts.astype(np.float64)
    if uncertain.any():
        acc[uncertain], redone = exact_trimmed(order.exact(uncertain), f)
        share += redone
    return acc / keep, share / keep


def exact_trimmed(values: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Kept-value sums and per-update kept mass of rows × n exact values (f ≥ 1)."""
    n = values.shape[1]
    order = np.argsort(values, axis=1, kind="stable")  # equal values by update index
    kept = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(kept, order[:, f : n - f], True, axis=1)
    acc = kept_sums(values, kept)
    cut = np.take_along_axis(values, order[:, [f - 1, f, n - f - 1, n - f]], axis=1)
    lo, hi = cut[:, 1], cut[:, 2]
    # A value repeated across a cut is shared fairly among its copies.
    tie = (cut[:, 0] == lo) | (cut[:, 3] == hi)
    share = kept[~tie].sum(axis=0).astype(np.float64)
    if tie.any():
        share += _tied_shares(values[tie], lo[tie, None], hi[tie, None], f)
    return acc, share


def split_shares(num: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Σ over coordinates of num/e to each of the e ≥ 1 updates ``held`` marks there, the
    same bytes on every machine: integer numerators are first summed per denominator
    (exact in float64 in any order), then divided and added in ascending denominator order
    (``accumulate`` adds strictly in sequence). A float GEMV of num/e would leave the
    order of the additions to BLAS, and that order follows the machine's SIMD width."""
    e = held.sum(axis=1)
    order = np.argsort(e, kind="stable")
    e = e[order]
    starts = np.flatnonzero(np.r_[True, e[1:] != e[:-1]])
    sums = np.add.reduceat(num[order, None] * held[order], starts, axis=0)
    return np.add.accumulate(sums / e[starts, None], axis=0)[-1]


def _tied_shares(ut: np.ndarray, lo: np.ndarray, hi: np.ndarray, f: int) -> np.ndarray:
    """Per-update kept mass on coordinates whose boundary values repeat."""
    n = ut.shape[1]
    keep = n - 2 * f
    inside = (ut > lo) & (ut < hi)
    eq_lo, eq_hi = ut == lo, ut == hi
    e_lo, e_hi = eq_lo.sum(axis=1), eq_hi.sum(axis=1)
    n_lt = (ut < lo).sum(axis=1)
    n_gt = n - n_lt - e_lo - inside.sum(axis=1) - e_hi
    same = lo[:, 0] == hi[:, 0]
    # Sorted positions f … n−f−1 are kept: how many copies of lo and of hi fall inside.
    need_lo = np.where(same, keep, n_lt + e_lo - f)
    need_hi = np.where(same, 0, e_hi + n_gt - f)
    share = inside.sum(axis=0).astype(np.float64)
    share += split_shares(need_lo, eq_lo)
    share += split_shares(need_hi, eq_hi)
    return share


def median_chunk(order: ColumnOrder) -> tuple[np.ndarray, np.ndarray]:
    """Median of every coordinate of a sub-chunk and each update's share of selections
    (for odd n the middle position counts twice, so shares are halved either way)."""
    med, held = median_picks(order.keys, order.bits, order.q, order.s, order.block_size)
    return med, held / 2.0


class CoordinateRule(Rule):
    """A rule applied column by column; coefficients are effective weights."""

    defaults: dict[str, Any] = {"flag_below": 0.0}

    def _chunk(self, order: ColumnOrder) -> tuple[np.ndarray, np.ndarray]:
        """The rule on one ordered sub-chunk."""
        raise NotImplementedError

    def extra_evidence(self) -> dict[str, Any]:
        return {}

    def start(self, n: int) -> None:
        """Prepare for a pass over a batch of n updates (rules with n-dependent settings)."""

    def aggregate(
        self,
        batch: ChunkSource,
        sample_counts: np.ndarray | None = None,
        state: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> AggregationResult:
        check_inputs(batch, sample_counts, ids)
        acc = CoordinateAccumulator([self], batch.n, batch.d, batch.block_size)
        shared_pass(batch, [], acc.visit)
        return acc.result(self.name)


class CoordinateAccumulator:
    """Collects coordinate rules' outputs chunk by chunk (usable as a Gram-pass visitor).

    Every rule shares one transpose and one key sort per sub-chunk (:class:`ColumnOrder`):
    the sort is most of a coordinate rule's cost, so a round that computes the median and
    the trimmed mean pays for it once."""

    def __init__(self, rules: list[CoordinateRule], n: int, d: int, block_size: int) -> None:
        for rule in rules:
            rule.start(n)
        self.rules, self.n, self.d, self.block_size = rules, n, d, block_size
        self.out = {r.name: np.zeros(d) for r in rules}
        self.mass = {r.name: np.zeros(n) for r in rules}
        self.sub_blocks = max(1, SUB_VALUES // (n * block_size))
        self._work = OrderedWork(self._add_masses)

    def visit(self, col: int, q: np.ndarray, s: np.ndarray) -> None:
        if not np.all(np.isfinite(s)):
            raise AggregationError("coordinate rules need finite scales")
        b, step = self.block_size, self.sub_blocks
        for k in range(0, s.shape[1], step):
            self._work.submit(
                self._sub_chunk, col + k * b, q[:, k * b : (k + step) * b], s[:, k : k + step]
            )

    def _sub_chunk(self, start: int, q: np.ndarray, s: np.ndarray) -> list[np.ndarray]:
        """Every rule on one sub-chunk: aggregates go straight to their own columns, the
        per-update masses come back to be added in column order (:meth:`_add_masses`)."""
        order = ColumnOrder(q, s, self.block_size)
        masses = []
        for rule in self.rules:
            agg, mass = rule._chunk(order)
            self.out[rule.name][start : start + len(agg)] = agg
            masses.append(mass)
        return masses

    def _add_masses(self, masses: list[np.ndarray]) -> None:
        for rule, mass in zip(self.rules, masses, strict=True):
            self.mass[rule.name] += mass

    def result(self, name: str) -> AggregationResult:
        self._work.drain()
        rule = next(r for r in self.rules if r.name == name)
        c = self.mass[name] / self.d
        avg = 1.0 / self.n
        below = float(rule.params["flag_below"])
        flags: list[str | None] = [
            f"{rule.name}: kept on {x:.3%} of coordinates-weight (< {below:g}× average)"
            if below > 0 and x < below * avg
            else None
            for x in c
        ]
        return AggregationResult(
            aggregate=self.out[name],
            coefficients=c,
            flags=flags,
            evidence={"effective_weights": c.tolist(), **rule.extra_evidence()},
            linear=False,
        )


class CoordinateMedian(CoordinateRule):
    """Per-coordinate median (Yin et al. 2018)."""

    name = "median"

    def _chunk(self, order: ColumnOrder) -> tuple[np.ndarray, np.ndarray]:
        return median_chunk(order)


class TrimmedMean(CoordinateRule):
    """Per-coordinate mean after dropping the f smallest and f largest values."""

    name = "trimmed_mean"
    defaults: dict[str, Any] = {"f": None, "byzantine_fraction": 0.3, "flag_below": 0.5}
    parameter_help = {
        "f": "values dropped at each end of every coordinate; null: ⌊byzantine_fraction·n⌋"
    }

    def _validate(self) -> None:
        f = self.params["f"]
        if f is not None and (not isinstance(f, int) or f < 0):
            raise self._param_error("f", "must be a non-negative integer or null")
        if not 0.0 <= float(self.params["byzantine_fraction"]) < 0.5:
            raise self._param_error("byzantine_fraction", "must lie in [0, 0.5)")

    def start(self, n: int) -> None:
        super().start(n)
        self._f = resolve_f(n, self.params["f"], float(self.params["byzantine_fraction"]))
        if 2 * self._f >= n:
            raise AggregationError(f"trimmed_mean cannot drop 2f ≥ n values (f={self._f}, n={n})")

    def _chunk(self, order: ColumnOrder) -> tuple[np.ndarray, np.ndarray]:
        return trimmed_chunk(order, self._f)

    def extra_evidence(self) -> dict[str, Any]:
        return {"f": self._f}
