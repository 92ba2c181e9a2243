"""Coordinate-wise median and trimmed mean, streamed over column chunks.

Both need the columns, not the Gram matrix, so they run chunk by chunk (optionally inside
the Gram pass, see :mod:`market.aggregator.engine`). Convention (ByzFL's ``Median`` and
``TrMean(f)``): the median of an even count is the mean of the two middle values; the
trimmed mean drops the f smallest and f largest values per coordinate and averages the
n − 2f left. Both are unweighted (sample counts are self-reported).

Determinism: each coordinate's n values are sorted (a canonical order: ties are equal
values) and the kept ones summed in that order by an explicit loop, so the bytes do not
depend on the sort algorithm. Layout: sub-chunks are transposed to (cols, n) so each sort
runs over contiguous memory that stays in cache.

Coefficients are *effective* weights (``linear=False``): the share of coordinates on which
each update's value was kept, divided by the number kept — Σ c_i = 1, and c_i = 0 means the
update never entered the aggregate. Flags: updates kept on less than ``flag_below`` times
the average share (off by default for the median, which keeps one value per coordinate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from market.aggregator.rules.base import (
    AggregationResult,
    ChunkSource,
    Rule,
    check_inputs,
)
from market.aggregator.rules.gram_rule import resolve_f
from market.errors import AggregationError

# Columns per sub-chunk: a (cols, n) float64 slab that stays in cache while it is sorted.
SUB_VALUES = 1 << 18


def dequantize_t(q: np.ndarray, s: np.ndarray, block_size: int) -> np.ndarray:
    """Exact float64 values of a chunk, transposed to (cols, n) so each coordinate's n
    values are contiguous for sorting."""
    n, c = q.shape
    blocks = s.shape[1]
    qt = np.ascontiguousarray(q.T)
    pad = blocks * block_size - c
    if pad:
        qt = np.pad(qt, ((0, pad), (0, 0)))
    u = qt.reshape(blocks, block_size, n).astype(np.float64)
    u *= s.T.astype(np.float64)[:, None, :]
    return u.reshape(-1, n)[:c]


def trimmed_chunk(
    ut: np.ndarray, f: int, srt: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Trimmed mean of each coordinate (row of ``ut`` (c, n)) and each update's kept mass.

    ``srt`` is ``ut`` sorted along rows, when a caller already has it (several coordinate
    rules share one sort)."""
    c, n = ut.shape
    keep = n - 2 * f
    if srt is None:
        srt = np.sort(ut, axis=1)
    # Canonical sum: kept values in sorted order, one row add at a time (no reduction
    # reordering); the kept block is transposed so each add runs over contiguous memory.
    kept_sorted = np.ascontiguousarray(srt[:, f : n - f].T)
    acc = kept_sorted[0].copy()
    for row in kept_sorted[1:]:
        acc += row
    if f == 0:
        return acc / n, np.full(n, c / n)
    lo, hi = srt[:, f : f + 1], srt[:, n - f - 1 : n - f]
    # A boundary value that repeats across the cut is shared fairly (sorted neighbours tell).
    tie = (srt[:, f - 1] == lo[:, 0]) | (srt[:, n - f] == hi[:, 0])
    if not tie.any():
        return acc / keep, _column_counts((ut >= lo) & (ut <= hi)) / keep
    clean = ~tie
    u = ut[clean]
    share = _column_counts((u >= lo[clean]) & (u <= hi[clean]))
    share += _tied_shares(ut[tie], lo[tie], hi[tie], f)
    return acc / keep, share / keep


def _column_counts(mask: np.ndarray) -> np.ndarray:
    """How many rows of a boolean (c, n) mask are True in each column: a float32 GEMV,
    exact while c < 2²⁴ (a sub-chunk has a few thousand rows), several times faster than
    summing booleans."""
    return (np.ones(mask.shape[0], np.float32) @ mask.astype(np.float32)).astype(np.float64)


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
    share += (need_lo / e_lo) @ eq_lo
    share += np.where(same, 0.0, need_hi / np.maximum(e_hi, 1)) @ eq_hi
    return share


def median_chunk(ut: np.ndarray, srt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Median of each coordinate (row of ``ut``) and each update's share of selections."""
    n = ut.shape[1]
    lo_k, hi_k = (n - 1) // 2, n // 2
    if srt is None:
        srt = np.sort(ut, axis=1)
    if lo_k == hi_k:
        return srt[:, lo_k].copy(), _selection_shares(ut, srt, lo_k, 1.0)
    share = _selection_shares(ut, srt, lo_k, 0.5) + _selection_shares(ut, srt, hi_k, 0.5)
    return (srt[:, lo_k] + srt[:, hi_k]) / 2.0, share


def _selection_shares(ut: np.ndarray, srt: np.ndarray, k: int, mass: float) -> np.ndarray:
    """Σ over coordinates of mass/count for each update equal to the k-th smallest value:
    where the value is unique (its sorted neighbours differ) the one update holding it is
    found by ``argmax``; repeated values split the mass among their holders."""
    c, n = ut.shape
    value = srt[:, k]
    tie = np.zeros(c, dtype=bool)
    if k > 0:
        tie |= srt[:, k - 1] == value
    if k < n - 1:
        tie |= srt[:, k + 1] == value
    eq = ut == value[:, None]
    share = np.bincount(eq[~tie].argmax(axis=1), minlength=n) * mass
    if tie.any():
        held = eq[tie]
        share = share + (mass / held.sum(axis=1)) @ held
    return share


class CoordinateRule(Rule):
    """A rule applied column by column; coefficients are effective weights."""

    defaults: dict[str, Any] = {"flag_below": 0.0}

    def _chunk(self, u: np.ndarray, srt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rule on one sub-chunk ``u`` (cols, n), given ``srt`` = ``u`` sorted by row."""
        raise NotImplementedError

    def extra_evidence(self) -> dict[str, Any]:
        return {}

    def start(self, n: int) -> None:
        """Prepare for a pass over a batch of n updates."""
        self._n = n

    def aggregate(
        self,
        batch: ChunkSource,
        sample_counts: np.ndarray | None = None,
        state: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> AggregationResult:
        check_inputs(batch, sample_counts, ids)
        acc = CoordinateAccumulator([self], batch.n, batch.d, batch.block_size)
        for col, q, s in batch.chunks():
            acc.visit(col, q, s)
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

    def visit(self, col: int, q: np.ndarray, s: np.ndarray) -> None:
        b, step = self.block_size, self.sub_blocks
        for k in range(0, s.shape[1], step):
            ut = dequantize_t(q[:, k * b : (k + step) * b], s[:, k : k + step], b)
            srt = np.sort(ut, axis=1)
            start = col + k * b
            for rule in self.rules:
                agg, mass = rule._chunk(ut, srt)
                self.out[rule.name][start : start + ut.shape[0]] = agg
                self.mass[rule.name] += mass

    def result(self, name: str) -> AggregationResult:
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

    def _chunk(self, u: np.ndarray, srt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return median_chunk(u, srt)


class TrimmedMean(CoordinateRule):
    """Per-coordinate mean after dropping the f smallest and f largest values."""

    name = "trimmed_mean"
    defaults: dict[str, Any] = {"f": None, "byzantine_fraction": 0.3, "flag_below": 0.5}

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

    def _chunk(self, u: np.ndarray, srt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return trimmed_chunk(u, self._f, srt)

    def extra_evidence(self) -> dict[str, Any]:
        return {"f": self._f}
