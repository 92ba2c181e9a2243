"""Coordinate-wise median and trimmed mean, streamed over column chunks.

Both need the columns, not the Gram matrix, so they run chunk by chunk (optionally inside
the Gram pass, see :mod:`market.aggregator.engine`). Convention (ByzFL's ``Median`` and
``TrMean(f)``): the median of an even count is the mean of the two middle values; the
trimmed mean drops the f smallest and f largest values per coordinate and averages the
n − 2f left. Both are unweighted (sample counts are self-reported).

Determinism: each coordinate's n values are sorted (a canonical order: ties are equal
values) and the kept ones summed in that order one add at a time, so the bytes do not
depend on the sort algorithm. Layout: sub-chunks are transposed to (cols, n) so each sort
runs over contiguous memory that stays in cache; the sort keys carry each value's update
index (:class:`SortedColumns`), so one sort also says who holds every kept value.

Coefficients are *effective* weights (``linear=False``): the share of coordinates on which
each update's value was kept, divided by the number kept — Σ c_i = 1, and c_i = 0 means the
update never entered the aggregate. Flags: updates kept on less than ``flag_below`` times
the average share (off by default for the median, which keeps one value per coordinate).
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
    sequential_sum,
)
from market.aggregator.rules.gram_rule import resolve_f, shared_pass
from market.aggregator.rules.parallel import OrderedWork
from market.errors import AggregationError

# Columns per sub-chunk: a (cols, n) float64 slab that stays in cache while it is sorted.
# (It also fixes how the per-update mass is summed, so it is part of the output's bytes.)
SUB_VALUES = 1 << 18
# A float64 s·q (24-bit × 7-bit significands) has its low 22 significand bits zero: the
# sort keys carry the update's index there, so one sort gives values and holders.
INDEX_BITS = 22
INDEX_MASK = np.int64((1 << INDEX_BITS) - 1)


class SortedColumns:
    """One sub-chunk's coordinates, each sorted across updates.

    Each key is the float64 bit pattern of a value with the update's index in its (zero)
    low bits: sorting the keys as float64 orders the values exactly (a key differs from its
    value by less than the gap to the next possible value) and breaks ties by index, so the
    sorted keys give every coordinate's sorted values and which update holds each of them."""

    def __init__(self, keys: np.ndarray, index: np.ndarray | None = None) -> None:
        """``keys`` (cols, n) int64: the values' bit patterns, indexed and sorted in place;
        ``index`` the update indices tiled to the same shape when a caller keeps them (a
        full-shape OR is twice as fast as broadcasting one row)."""
        n = keys.shape[1]
        if n > 1 << INDEX_BITS:
            raise AggregationError(f"coordinate rules take at most 2^{INDEX_BITS} updates")
        keys |= np.arange(n, dtype=np.int64) if index is None else index
        keys.view(np.float64).sort(axis=1)
        self.keys = keys

    @classmethod
    def of(cls, ut: np.ndarray) -> SortedColumns:
        """Sorted copy of values ``ut`` (cols, n), which must be exact products s·q."""
        keys = np.array(ut, dtype=np.float64).view(np.int64)
        if np.any(keys & INDEX_MASK):
            raise AggregationError("coordinate values must be exact products s·q")
        return cls(keys)

    def value(self, k: int) -> np.ndarray:
        """The k-th smallest value of every coordinate."""
        return (self.keys[:, k] & ~INDEX_MASK).view(np.float64)

    def window(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted positions [start, stop) of every coordinate, position-major: the values
        (stop − start, cols) and which update holds each."""
        raw = np.empty((stop - start, self.keys.shape[0]), dtype=np.int64)
        raw[...] = self.keys[:, start:stop].T
        holders = raw & INDEX_MASK
        raw &= ~INDEX_MASK
        return raw.view(np.float64), holders

    def rows(self, coords: np.ndarray) -> np.ndarray:
        """The values (len, n) of the selected coordinates (a boolean mask) in update order,
        put back from the sorted keys."""
        keys = self.keys[coords]
        out = np.empty(keys.shape)
        np.put_along_axis(out, keys & INDEX_MASK, (keys & ~INDEX_MASK).view(np.float64), 1)
        return out


def dequantize_t(q: np.ndarray, s: np.ndarray, block_size: int, out: np.ndarray) -> None:
    """Exact float64 values of a chunk, transposed to (cols, n) so each coordinate's n
    values are contiguous for sorting, written into ``out`` (C-contiguous (cols, n))."""
    n, c = q.shape
    # Transpose from a copy whose row stride is not a power of two: a power-of-two stride
    # maps the column reads onto a few cache sets (measured 5× slower).
    padded = np.empty((n, c + 64), dtype=np.int8)[:, :c]
    padded[...] = q
    out[...] = padded.T
    # Scales repeated to full rows: one long multiply beats broadcasting rows of n.
    out *= np.repeat(s.T.astype(np.float64), block_size, axis=0)[:c]


def _counts(holders: np.ndarray, n: int) -> np.ndarray:
    """How often each update appears in ``holders`` (exact integers, as float64)."""
    return np.bincount(holders.ravel(), minlength=n).astype(np.float64)


def trimmed_chunk(cols: SortedColumns, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed mean of each sorted coordinate and each update's kept mass."""
    c, n = cols.keys.shape
    keep = n - 2 * f
    # Canonical sum: kept values in sorted order, one at a time, so the bytes do not depend
    # on the sort algorithm.
    kept, holders = cols.window(f, n - f)
    acc = sequential_sum(kept)
    if f == 0:
        return acc / n, np.full(n, c / n)
    lo, hi = cols.value(f), cols.value(n - f - 1)
    # A boundary value that repeats across the cut is shared fairly (sorted neighbours tell).
    tie = (cols.value(f - 1) == lo) | (cols.value(n - f) == hi)
    if not tie.any():
        return acc / keep, _counts(holders, n) / keep
    share = _counts(holders[:, ~tie], n)
    share += _tied_shares(cols.rows(tie), lo[tie, None], hi[tie, None], f)
    return acc / keep, share / keep


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


def median_chunk(cols: SortedColumns) -> tuple[np.ndarray, np.ndarray]:
    """Median of each sorted coordinate and each update's share of selections.

    The share of a selected value: where it is unique (its sorted neighbours differ) the
    key names its one holder; a repeated value splits the mass among its holders."""
    c, n = cols.keys.shape
    lo_k, hi_k = (n - 1) // 2, n // 2
    first = max(lo_k - 1, 0)
    vals, holders = cols.window(first, min(hi_k + 2, n))
    picks = [lo_k] if lo_k == hi_k else [lo_k, hi_k]
    ties = []
    for k in picks:
        tie = np.zeros(c, dtype=bool)
        if k > 0:
            tie |= vals[k - 1 - first] == vals[k - first]
        if k < n - 1:
            tie |= vals[k + 1 - first] == vals[k - first]
        ties.append(tie)
    any_tie = np.logical_or.reduce(ties)
    rows = cols.rows(any_tie)  # update-order values of the coordinates with a repeat
    picked = np.zeros(n)
    held = []
    for k, tie in zip(picks, ties, strict=True):
        picked += _counts(holders[k - first, ~tie], n)
        held.append(rows[tie[any_tie]] == vals[k - first, tie, None])
    tied = np.concatenate(held)
    if len(tied):
        picked += split_shares(np.ones(len(tied), np.int64), tied)
    share = picked / len(picks)
    if lo_k == hi_k:
        return vals[lo_k - first].copy(), share
    return (vals[lo_k - first] + vals[hi_k - first]) / 2.0, share


class CoordinateRule(Rule):
    """A rule applied column by column; coefficients are effective weights."""

    defaults: dict[str, Any] = {"flag_below": 0.0}

    def _chunk(self, cols: SortedColumns) -> tuple[np.ndarray, np.ndarray]:
        """The rule on one sorted sub-chunk."""
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

    Every rule shares one dequantisation and one sort per sub-chunk: the sort is most of a
    coordinate rule's cost, so a round that computes the median and the trimmed mean pays
    for it once."""

    def __init__(self, rules: list[CoordinateRule], n: int, d: int, block_size: int) -> None:
        for rule in rules:
            rule.start(n)
        self.rules, self.n, self.d, self.block_size = rules, n, d, block_size
        self.out = {r.name: np.zeros(d) for r in rules}
        self.mass = {r.name: np.zeros(n) for r in rules}
        self.sub_blocks = max(1, SUB_VALUES // (n * block_size))
        self._index = np.tile(np.arange(n, dtype=np.int64), (self.sub_blocks * block_size, 1))
        self._buffers = threading.local()  # one key buffer per worker thread
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
        keys = getattr(self._buffers, "keys", None)
        if keys is None:
            keys = self._buffers.keys = np.empty(self._index.shape, dtype=np.int64)
        keys = keys[: q.shape[1]]
        dequantize_t(q, s, self.block_size, out=keys.view(np.float64))
        cols = SortedColumns(keys, self._index[: len(keys)])
        masses = []
        for rule in self.rules:
            agg, mass = rule._chunk(cols)
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

    def _chunk(self, cols: SortedColumns) -> tuple[np.ndarray, np.ndarray]:
        return median_chunk(cols)


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

    def _chunk(self, cols: SortedColumns) -> tuple[np.ndarray, np.ndarray]:
        return trimmed_chunk(cols, self._f)

    def extra_evidence(self) -> dict[str, Any]:
        return {"f": self._f}
